"""The staff side: what a message or button press in the staff group does.

A message in a ticket's topic (or replying to one of its posts, or starting with
``#123``) is relayed to the customer on their channel, then confirmed in the group
(👌 on the staff message, or a note saying what failed). ``/note …`` stays internal;
``/close``, ``/bot``, ``/resolve``, ``/claim``, ``/reopen`` and ``/draft`` do what the
card's buttons do. An edited staff message is sent again, marked ✏️, because customers
never see edits. Only members of the staff group get here (other chats are never
marked staff), and when ``SUPPORTLAH_STAFF_USER_IDS`` is set only those users may act.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from config.types import Reply
from channels.messages import Attachment, AttachmentKind, Channel, InboundMessage, OutboundMessage, utcnow
from channels.telegram.normalize import FILE_URL_SCHEME
from channels.telegram.staff_chat import StaffChat
from escalation import card
from escalation import texts as customer_texts
from escalation.config import EscalationConfig
from config.hours import BusinessHours
from escalation.media import MediaLinks, StaffFile
from escalation.models import Ticket, TicketStatus
from escalation.parts import PartFactory
from escalation.telegram_relay import COPY_FROM_CHAT, COPY_MESSAGE_ID
from escalation.tickets import TicketRepository
from memory.store import StoredMessage
from workers.hooks import Decision

log = logging.getLogger(__name__)

AnswerCallback = Callable[[str, str | None], Awaitable[None]]
STAFF_COMMANDS = ("note", "close", "bot", "resolve", "claim", "reopen", "draft")
_TICKET_PREFIX = re.compile(r"^#(\d+)\b[:\s]*")
_DEFAULT_MIME = {AttachmentKind.IMAGE: "image/jpeg", AttachmentKind.DOCUMENT: "application/octet-stream",
                 AttachmentKind.AUDIO: "audio/mpeg", AttachmentKind.VIDEO: "video/mp4"}
NOTE_REACTION = "✍"
MAX_ECHO = 3500  # a console reply quoted in the staff group stays one Telegram message


class StaffDesk:
    def __init__(self, config: EscalationConfig, tickets: TicketRepository, parts: PartFactory,
                 hours: BusinessHours, *, media_links: MediaLinks | None = None,
                 answer_callback: AnswerCallback | None = None, clock: Callable[[], datetime] = utcnow,
                 staff_chat: StaffChat | None = None) -> None:
        self._config = config
        self._staff_chat = staff_chat  # the group's id now (it changes when it becomes a supergroup)
        self._tickets = tickets
        self._parts = parts
        self._hours = hours
        self._media_links = media_links
        self._answer_callback = answer_callback
        self._clock = clock

    def _staff_chat_id(self) -> int:
        if self._staff_chat is not None:
            return self._staff_chat.current
        return self._config.staff_chat_id or 0

    async def handle(self, stored: StoredMessage) -> Decision:
        """What a staff message (staff group or web console) does; without a staff group nothing is posted there."""
        decision = await self._handle(stored)
        decision.parts = self._parts.deliverable(decision.parts or [])
        return decision

    async def _handle(self, stored: StoredMessage) -> Decision:
        msg = stored.message
        meta = msg.metadata
        is_button = meta.get("kind") == "callback"
        # Channel.STAFF messages come from our own console or admin API, which signed their author in;
        # the allow-list is about who may act from the Telegram group.
        if msg.channel != Channel.STAFF and not self._config.may_act(meta.get("user_id")):
            log.info("staff-group action by someone not on the staff allow-list ignored",
                     extra={"user_id": meta.get("user_id")})
            if is_button:
                await self._answer(meta, "Only the support team can act on tickets.")
            return _ignored()
        if is_button:
            parsed = card.parse_callback(msg.text)
            ticket = await self._tickets.by_number(parsed[1]) if parsed else None
            if parsed is None or ticket is None:
                await self._answer(meta, None if parsed is None else "This ticket no longer exists.")
                return _ignored()
            return await self._act(stored, ticket, parsed[0])
        ticket, text = await self._ticket_for(msg.metadata, msg.text)
        if ticket is None:
            return _ignored()  # team chatter outside any ticket
        command, args = _staff_command(text)
        if command == "note":
            return await self._note(stored, ticket, args)
        if command is not None:
            return await self._act(stored, ticket, command)
        if text.startswith("/") and text[1:2].isalpha():  # a mistyped command must not reach the customer
            commands = " ".join(f"/{name}" for name in STAFF_COMMANDS)
            return _decision(ticket, [self._parts.staff(msg.id, "unknown", ticket,
                                                        f"ℹ️ Not sent: unknown command. Commands here: {commands}",
                                                        "notice")])
        if meta.get("edited") == "true" and text.strip():  # customers cannot see edits: send the correction
            text = f"✏️ {text}"
        return await self._relay(stored, ticket, text)

    # ------------------------------------------------------------------ routing
    async def _ticket_for(self, meta: dict[str, str], text: str) -> tuple[Ticket | None, str]:
        chat_id = self._staff_chat_id()
        if meta.get("thread_id"):
            conversation_id = await self._tickets.conversation_for_thread(chat_id, int(meta["thread_id"]))
            if conversation_id is not None:
                return await self._tickets.latest_for(conversation_id), text
        if meta.get("reply_to_telegram_message_id"):
            ticket = await self._tickets.ticket_for_post(chat_id, int(meta["reply_to_telegram_message_id"]))
            if ticket is not None:
                return ticket, text
        match = _TICKET_PREFIX.match(text)
        if match:
            return await self._tickets.by_number(int(match.group(1))), text[match.end():]
        return None, text

    # ------------------------------------------------------------------ actions
    async def _note(self, stored: StoredMessage, ticket: Ticket, note: str) -> Decision:
        msg = stored.message
        await self._tickets.record(ticket.id, key=f"{msg.id}:note", kind="note", actor=_actor(msg.metadata),
                                   actor_name=msg.sender_name, detail=note)
        confirm = self._parts.staff(msg.id, "note", ticket, "📝 Note saved (not sent to the customer)", "confirm",
                                    react_to=msg.metadata.get("telegram_message_id", ""), reaction=NOTE_REACTION,
                                    **_console_echo(msg, f"📝 Note by {msg.sender_name or 'staff'} "
                                                                  f"(console, not sent to the customer): {note}"))
        return _decision(ticket, [confirm])

    async def _act(self, stored: StoredMessage, ticket: Ticket, action: str) -> Decision:
        msg = stored.message
        meta = msg.metadata
        who, name = _actor(meta), msg.sender_name or "staff"
        key = f"{msg.id}:{action}"
        redo = await self._tickets.has_event(key)  # a retried job: the change already happened
        active = ticket.status in TicketStatus.ACTIVE
        refusal = None if redo else _refusal(action, ticket, active)
        if refusal is not None:
            await self._answer(meta, refusal)
            return _decision(ticket, [] if meta.get("kind") == "callback" else
                             [self._parts.staff(msg.id, "refused", ticket, f"ℹ️ {refusal}", "notice")])
        now = self._clock()
        parts: list[OutboundMessage] = []
        if action == "claim":
            ticket = await self._tickets.change(ticket.id, key=key, kind="claimed", actor=who, actor_name=name,
                                                status=TicketStatus.CLAIMED if ticket.status == TicketStatus.OPEN
                                                else ticket.status, assignee_id=meta.get("user_id"),
                                                assignee_name=name)
            feedback = f"You have ticket #{ticket.number}."
        elif action == "draft":
            customer = self._parts.customer(msg.id, "draft", ticket, ticket.draft_text, role="staff")
            ticket = await self._answered(ticket, key, "draft_sent", who, name, meta, now, ticket.draft_text)
            parts += customer
            parts.append(self._parts.staff(msg.id, "draft-confirm", ticket, "", "confirm",
                                           confirms=",".join(p.id for p in customer),
                                           ok_text=f"📤 AI draft sent to the customer by {name}"))
            feedback = "AI draft sent."
        elif action == "reopen":
            ticket = await self._tickets.change(
                ticket.id, key=key, kind="reopened", actor=who, actor_name=name, status=TicketStatus.CLAIMED,
                assignee_id=meta.get("user_id"), assignee_name=name, resolved_at=None, closed_at=None,
                sla_due_at=self._sla_due(ticket.priority, now), sla_reminded_at=None)
            parts.append(self._parts.staff(msg.id, "notice", ticket, f"↩️ Reopened by {name}.", "notice"))
            feedback = f"Ticket #{ticket.number} reopened."
        else:  # resolve | bot | close: the customer goes back to the bot
            status = TicketStatus.CLOSED if action == "close" else TicketStatus.RESOLVED
            kind = {"resolve": "resolved", "bot": "returned_to_bot", "close": "closed"}[action]
            ticket = await self._tickets.change(
                ticket.id, key=key, kind=kind, actor=who, actor_name=name, status=status,
                assignee_id=ticket.assignee_id or meta.get("user_id"), assignee_name=ticket.assignee_name or name,
                resolved_at=ticket.resolved_at or now, closed_at=now if status == TicketStatus.CLOSED else None)
            if active or redo:
                told = "back_to_bot" if action == "bot" else "resolved"
                parts += self._parts.customer(msg.id, told, ticket,
                                              customer_texts.text(told, ticket.language), role="assistant")
            words = {"resolve": f"✅ Resolved by {name}. The bot answers the customer again.",
                     "bot": f"🤖 {name} handed the conversation back to the bot.",
                     "close": f"🔒 Closed by {name}."}[action]
            parts.append(self._parts.staff(msg.id, "notice", ticket, words,
                                           "close_topic" if action == "close" else "notice"))
            feedback = words
        parts.insert(0, self.card_update(msg.id, ticket))
        await self._answer(meta, feedback)
        return _decision(ticket, parts)

    async def _relay(self, stored: StoredMessage, ticket: Ticket, text: str) -> Decision:
        msg = stored.message
        meta = msg.metadata
        who, name = _actor(meta), msg.sender_name or "staff"
        customer, problems = self._customer_parts(msg.id, ticket, text, msg.attachments, meta)
        parts: list[OutboundMessage] = []
        if customer:
            status_before = ticket.status
            ticket = await self._answered(ticket, f"{msg.id}:reply", "staff_reply", who, name, meta, self._clock(),
                                          text or "(attachment)")
            if status_before != ticket.status:  # e.g. open -> waiting for the customer: redraw the card
                parts.append(self.card_update(msg.id, ticket))
            parts += customer
            parts.append(self._parts.staff(msg.id, "confirm", ticket, "", "confirm",
                                           confirms=",".join(p.id for p in customer),
                                           react_to=meta.get("telegram_message_id", ""),
                                           **_console_echo(msg, f"💬 {name} (console): {text}")))
        for index, problem in enumerate(problems):
            parts.append(self._parts.staff(msg.id, f"problem:{index}", ticket, f"⚠️ {problem}", "notice"))
        return _decision(ticket, parts)

    async def _answered(self, ticket: Ticket, key: str, kind: str, who: str, name: str, meta: dict[str, str],
                        now: datetime, detail: str) -> Ticket:
        """Staff wrote to the customer: the ticket waits for the customer (and is theirs if unclaimed)."""
        return await self._tickets.change(
            ticket.id, key=key, kind=kind, actor=who, actor_name=name, detail=detail[:2000],
            status=TicketStatus.WAITING_CUSTOMER, assignee_id=ticket.assignee_id or meta.get("user_id"),
            assignee_name=ticket.assignee_name or name, first_response_at=ticket.first_response_at or now,
            resolved_at=None, closed_at=None)

    # ------------------------------------------------------------------ content for the customer
    def _customer_parts(self, message_id: str, ticket: Ticket, text: str, attachments: list[Attachment],
                        meta: dict[str, str]) -> tuple[list[OutboundMessage], list[str]]:
        files = [a for a in attachments if (a.url or "").startswith(FILE_URL_SCHEME)]
        if not files:
            return (self._parts.customer(message_id, "reply", ticket, text, role="staff") if text.strip()
                    else []), ([] if text.strip() else ["Nothing to send: this kind of message can't be relayed."])
        if ticket.channel == Channel.TELEGRAM.value:  # the real file, caption included
            label = text or f"[{files[0].kind.value}]"
            return self._parts.customer(
                message_id, "copy", ticket, label, role="staff",
                **{COPY_FROM_CHAT: str(self._staff_chat_id()), COPY_MESSAGE_ID: meta["telegram_message_id"]},
            )[:1], []
        if self._media_links is None or (ticket.channel == Channel.WHATSAPP.value and not self._config.public_url):
            problem = ("The attachment was not sent: WhatsApp fetches files from our public address, so set "
                       "SUPPORTLAH_PUBLIC_URL." if ticket.channel == Channel.WHATSAPP.value
                       else "The attachment was not sent: attachments are not available on this channel.")
            return (self._parts.customer(message_id, "reply", ticket, text, role="staff") if text.strip()
                    else []), [problem]
        links = [self._media_links.link(StaffFile(a.url[len(FILE_URL_SCHEME):],
                                                  a.mime_type or _DEFAULT_MIME.get(a.kind, "application/octet-stream"),
                                                  a.name or a.kind.value)) for a in files]
        body = "\n".join(filter(None, [text.strip(), *(f"📎 {link}" for link in links)]))
        return self._parts.customer(message_id, "reply", ticket, body, role="staff"), []

    # ------------------------------------------------------------------ helpers
    def card_update(self, message_id: str, ticket: Ticket) -> OutboundMessage:
        """Redraw the ticket's card (status line and buttons) after a change."""
        sla_local = self._hours.local(ticket.sla_due_at) if ticket.sla_due_at else None
        text = card.render(ticket, sla_local=sla_local, topics=self._config.use_topics)
        return self._parts.staff(message_id, "card", ticket, text, "card_update", keyboard=card.keyboard(ticket))

    def _sla_due(self, priority: str, now: datetime) -> datetime | None:
        return self._hours.add_business_minutes(now, self._config.sla_minutes.get(priority, 60))

    async def _answer(self, meta: dict[str, str], text: str | None) -> None:
        if meta.get("kind") != "callback" or self._answer_callback is None:
            return
        try:
            await self._answer_callback(meta.get("callback_query_id", ""), text)
        except Exception:  # the spinner stops by itself; the press itself was handled
            log.warning("could not answer a staff button press", exc_info=True)


def _refusal(action: str, ticket: Ticket, active: bool) -> str | None:
    if action == "reopen" and active:
        return f"Ticket #{ticket.number} is already open."
    if action in ("claim", "resolve", "bot") and not active:
        return f"Ticket #{ticket.number} is {ticket.status}; reopen it first."
    if action == "close" and ticket.status == TicketStatus.CLOSED:
        return f"Ticket #{ticket.number} is already closed."
    if action == "draft" and not ticket.draft_text:
        return f"Ticket #{ticket.number} has no AI draft."
    return None


def _staff_command(text: str) -> tuple[str | None, str]:
    if not text.startswith("/"):
        return None, text
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return (name, args.strip()) if name in STAFF_COMMANDS else (None, text)


def _actor(meta: dict[str, str]) -> str:
    return f"staff:{meta.get('user_id', '?')}"


def _ignored() -> Decision:
    return Decision(reply=Reply(text="", language="en", confidence=1.0, backend={"answerer": "escalation:ignored"}),
                    parts=[])


def _console_echo(msg: InboundMessage, text: str) -> dict[str, str]:
    """A console (or admin API) message has no Telegram message to react to: the group's confirmation
    quotes it instead, so the ticket's topic shows what was sent from there."""
    return {"ok_text": text[:MAX_ECHO]} if msg.channel == Channel.STAFF else {}


def _decision(ticket: Ticket, parts: list[OutboundMessage]) -> Decision:
    return Decision(reply=Reply(text="", language=ticket.language, confidence=1.0,
                                backend={"answerer": "escalation:staff", "ticket": str(ticket.number)}), parts=parts)
