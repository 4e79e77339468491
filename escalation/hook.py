"""The hand-off as a :class:`~workers.hooks.MessageHook` around the agent.

before_agent
    * staff-group messages and button presses → :class:`~escalation.desk.StaffDesk`;
    * a customer with an active ticket (human mode) → their message goes to the staff
      topic (with an AI suggestion for staff only); the AI does not answer. Bot commands
      and 👍/👎 still go to the command hook;
    * a customer repeating a question the bot already failed on (see
      :mod:`escalation.triggers`) → handed to staff with reason ``unsatisfied``.
after_agent
    * any escalating reply (low confidence, a request for a person, a sensitive topic,
      a system error, ``unsatisfied``) and the second 👎 in a row open a ticket (or
      reopen a recently resolved one) and add the hand-off card for the staff group,
      plus, outside business hours, a note telling the customer when to expect a person.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from config.types import HandoffReason, Reply
from channels.messages import Attachment, AttachmentKind, Channel, OutboundMessage, utcnow
from channels.telegram.keyboard import CALLBACK_HUMAN, FEEDBACK_PREFIX, LANGUAGE_PREFIX, Button
from channels.telegram.normalize import FILE_URL_SCHEME
from escalation import card
from escalation import texts as customer_texts
from escalation.card import CardFacts
from escalation.config import EscalationConfig
from escalation.desk import StaffDesk
from escalation.drafts import Draft, Drafter, summarize
from config.hours import BusinessHours
from escalation.models import Ticket, TicketStatus
from escalation.parts import PartFactory
from escalation.tickets import NewTicket, TicketRepository
from escalation.triggers import priority_for, unsatisfied
from memory.store import MessageStore, StoredMessage
from workers.hooks import Decision
from workers.media import TRANSCRIBED

log = logging.getLogger(__name__)

CARD_MESSAGES = 6  # transcript lines on the card
HUMAN_MODE = "escalation:human_mode"


class OtherDesk(Protocol):
    """A place besides the staff group where staff answer hand-offs (the web console)."""

    async def staffed(self) -> bool:
        """True when someone can answer there (the console has accounts)."""


class EscalationHook:
    """Without any desk (no staff group, nobody on the console) a hand-off is recorded as a ticket for
    follow-up and the AI keeps answering; with one, the conversation waits for staff (human mode)."""

    def __init__(self, config: EscalationConfig, tickets: TicketRepository, store: MessageStore, parts: PartFactory,
                 hours: BusinessHours, desk: StaffDesk, *, drafter: Drafter | None = None,
                 other_desk: OtherDesk | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self._config = config
        self._tickets = tickets
        self._store = store
        self._parts = parts
        self._hours = hours
        self._desk = desk
        self._drafter = drafter
        self._other_desk = other_desk
        self._clock = clock

    # ------------------------------------------------------------------ before the agent
    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        meta = stored.message.metadata
        if meta.get("staff") == "true":
            return await self._desk.handle(stored)
        if card.parse_callback(stored.message.text) is not None and meta.get("kind") == "callback":
            log.warning("a ticket button was pressed outside the staff group; ignored")
            return Decision(reply=Reply(text="", language=stored.conversation_language or "en", confidence=1.0,
                                        backend={"answerer": "escalation:ignored"}), parts=[])
        if "command" in meta or "feedback" in meta or not await self._has_desk():
            return None
        ticket = await self._tickets.active_for(stored.message.conversation_id)
        if ticket is not None:
            return await self._to_staff(stored, ticket)
        if await self._unsatisfied(stored, question=True):
            language = customer_texts.language_of(stored.conversation_language)
            return Decision(reply=Reply(text=customer_texts.text("unsatisfied", language), language=language,
                                        confidence=0.0, escalate=True, reason=HandoffReason.UNSATISFIED,
                                        backend={"answerer": "escalation:unsatisfied"}))
        return None

    async def _to_staff(self, stored: StoredMessage, ticket: Ticket) -> Decision:
        """Human mode: the customer's message goes to the ticket's topic, not to the AI."""
        msg = stored.message
        now = self._clock()
        parts: list[OutboundMessage] = []
        if ticket.status == TicketStatus.WAITING_CUSTOMER:  # the ball is back with staff: the SLA restarts
            ticket = await self._tickets.change(
                ticket.id, key=f"{msg.id}:customer", kind="customer_replied", actor="customer",
                actor_name=msg.sender_name, detail=msg.text[:2000],
                status=TicketStatus.CLAIMED if ticket.assignee_id else TicketStatus.OPEN,
                sla_due_at=self._sla_due(ticket.priority, now), sla_reminded_at=None)
            parts.append(self._desk.card_update(msg.id, ticket))
        else:
            await self._tickets.record(ticket.id, key=f"{msg.id}:customer", kind="customer_message",
                                       actor="customer", actor_name=msg.sender_name, detail=msg.text[:2000])
        parts += self._forward(msg.id, ticket, msg.sender_name or "Customer", msg.text, msg.attachments,
                               msg.metadata)
        if self._config.ai_suggestions and self._drafter is not None and msg.text.strip():
            draft = await self._drafter.draft(msg.text)
            if draft is not None:  # the latest suggestion is what "Send AI draft" sends
                await self._tickets.update(ticket.id, draft_text=draft.text,
                                           draft_sources=[s.as_record() for s in draft.sources])
                parts.append(self._suggestion(msg.id, ticket, draft))
        reply = Reply(text="", language=ticket.language, confidence=1.0,
                      backend={"answerer": HUMAN_MODE, "ticket": str(ticket.number)})
        return Decision(reply=reply, parts=self._parts.deliverable(parts))

    def _suggestion(self, message_id: str, ticket: Ticket, draft: Draft) -> OutboundMessage:
        sources = ", ".join(dict.fromkeys(source.document for source in draft.sources))
        text = f"🤖 Suggested answer (only staff see this):\n{draft.text}" + (f"\nSources: {sources}" if sources else "")
        send = ((Button("📤 Send AI draft", card.callback_data("draft", ticket.number)),),)
        return self._parts.staff(message_id, "suggestion", ticket, text, "draft", keyboard=send)

    def _forward(self, message_id: str, ticket: Ticket, name: str, text: str, attachments: list[Attachment],
                 meta: dict[str, str], *, heard: str = "") -> list[OutboundMessage]:
        parts: list[OutboundMessage] = []
        files = [a for a in attachments if a.url and a.kind not in (AttachmentKind.LOCATION, AttachmentKind.CONTACT)]
        others = [f"{a.kind.value}: {a.name or a.url}" for a in attachments if a not in files]
        copied = bool(files) and ticket.channel == Channel.TELEGRAM.value and bool(meta.get("telegram_message_id"))
        if copied:
            parts.append(self._parts.staff(message_id, "copy", ticket, text or f"[{files[0].kind.value}]", "copy",
                                           copy_from_chat=ticket.customer_id,
                                           copy_message_id=meta["telegram_message_id"]))
            files, text = [], ""  # the copy carries the media and its caption
        body = "\n".join(filter(None, [text.strip(), *others]))
        if body or not (files or copied):
            parts.append(self._parts.staff(message_id, "forward", ticket, f"👤 {name}: {body or '(empty message)'}",
                                           "forward"))
        for index, attachment in enumerate(files):
            if (attachment.url or "").startswith(FILE_URL_SCHEME):
                continue  # a Telegram file without its message id: nothing we can copy
            caption = f"👤 {name}"
            if attachment.kind == AttachmentKind.AUDIO and meta.get(TRANSCRIBED) == "true" and heard:
                caption += f" · 🎤 voice note, heard as: “{heard}”"  # staff can check it against the audio
            parts.append(self._parts.staff(
                message_id, f"upload:{index}", ticket, caption, "upload", media_url=attachment.url or "",
                media_kind=attachment.kind.value, media_name=attachment.name or "",
                media_mime=attachment.mime_type or ""))
        return parts

    # ------------------------------------------------------------------ after the agent
    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        msg = stored.message
        if msg.metadata.get("staff") == "true" or reply.backend.get("answerer") in (HUMAN_MODE, "escalation:ignored"):
            return []
        reason, notice = reply.reason, []
        if not reply.escalate:
            if msg.metadata.get("feedback") != "down" or not await self._has_desk():
                return []
            if await self._tickets.active_for(msg.conversation_id) is not None:
                return []
            if not await self._unsatisfied(stored, question=False):
                return []
            reason = HandoffReason.UNSATISFIED
            notice = [customer_texts.text("unsatisfied", stored.conversation_language)]
        return await self._escalate(stored, reply, reason or HandoffReason.AGENT_DECISION, notice)

    async def _escalate(self, stored: StoredMessage, reply: Reply, reason: HandoffReason,
                        notice: list[str]) -> list[OutboundMessage]:
        msg = stored.message
        conversation_id = msg.conversation_id
        ticket = (await self._tickets.by_opening_message(msg.id)
                  or await self._tickets.ticket_for_event(f"{msg.id}:reopened"))
        if ticket is None:
            active = await self._tickets.active_for(conversation_id)
            if active is not None:
                return await self._escalated_again(msg.id, active, reason)
            ticket = await self._open(stored, reply, reason)
        now = self._clock()
        parts: list[OutboundMessage] = []
        language = ticket.language
        for index, text in enumerate(notice):
            parts += self._parts.customer(msg.id, f"notice:{index}", ticket, text, role="assistant")
        if await self._has_desk() and not self._hours.is_open(now):
            opens = self._hours.next_open(now)
            when = customer_texts.expected_reply(self._hours.local(opens) if opens else None,
                                                 self._hours.local(now), language)
            parts += self._parts.customer(msg.id, "hours", ticket, when, role="assistant")
        if self._parts.has_staff_group:
            sla_local = self._hours.local(ticket.sla_due_at) if ticket.sla_due_at else None
            parts.append(self._parts.staff(msg.id, "card", ticket,
                                           card.render(ticket, sla_local=sla_local, topics=self._config.use_topics),
                                           "card", keyboard=card.keyboard(ticket)))
            if msg.attachments:  # what the customer sent (a photo without a question, say) follows the card
                parts += self._forward(msg.id, ticket, msg.sender_name or "Customer", "", msg.attachments,
                                       msg.metadata, heard=msg.text)
        return parts

    async def _open(self, stored: StoredMessage, reply: Reply, reason: str) -> Ticket:
        msg = stored.message
        now = self._clock()
        conversation_id = msg.conversation_id
        transcript = [item for item in await self._store.transcript(conversation_id, limit=CARD_MESSAGES * 3)
                      if not _button_press(item)]
        events = await self._tickets.customer_events(conversation_id, until=msg.received_at)
        questions = [event.text for event in events if event.kind == "question"]
        question = questions[-1] if questions else ""
        draft = await self._drafter.draft(question) if self._drafter is not None and question else None
        latest = await self._tickets.latest_for(conversation_id)
        repeat = await self._tickets.had_ticket_since(stored.contact_id, now - self._config.repeat_contact_window)
        vip = msg.sender_id in self._config.vip_contacts
        priority, why = priority_for(" ".join(questions[-3:] + [question]), reason,
                                     urgent_terms=self._config.urgent_terms, vip=vip, repeat_contact=repeat)
        hours_note = ""
        if not self._hours.is_open(now):
            opens = self._hours.next_open(now)
            when = customer_texts.format_when(self._hours.local(opens), self._hours.local(now), "en") if opens \
                else "as soon as possible"
            hours_note = f"Outside business hours: the customer was told to expect a reply {when}."
        facts = CardFacts(transcript=transcript[-CARD_MESSAGES:], priority_why=why, hours_note=hours_note)
        new = NewTicket(
            conversation_id=conversation_id, contact_id=stored.contact_id, channel=msg.channel.value,
            customer_id=msg.sender_id, customer_name=msg.sender_name,
            language=customer_texts.language_of(reply.language or stored.conversation_language),
            reason=reason, priority=priority, opened_by_message_id=msg.id,
            summary=summarize(questions[-3:] or [question]),
            draft_text=draft.text if draft else "",
            draft_sources=[s.as_record() for s in draft.sources] if draft else [],
            card_facts=facts.stored(), sla_due_at=self._sla_due(priority, now), detail=reason,
            human_mode=await self._has_desk())
        if (latest is not None and latest.status == TicketStatus.RESOLVED and latest.resolved_at is not None
                and now - latest.resolved_at <= self._config.reopen_window):
            return await self._tickets.reopen(latest, new, key=f"{msg.id}:reopened")
        return await self._tickets.open(new)

    async def _escalated_again(self, message_id: str, ticket: Ticket, reason: str) -> list[OutboundMessage]:
        """Already with staff (e.g. /human pressed again): remind them rather than opening a second ticket."""
        await self._tickets.record(ticket.id, key=f"{message_id}:escalated", kind="escalated_again",
                                   actor="customer", detail=reason)
        if not self._parts.has_staff_group:
            return []
        return [self._parts.staff(message_id, "again", ticket,
                                  f"🔔 The customer is asking for a person again ({reason.replace('_', ' ')}).",
                                  "notice")]

    # ------------------------------------------------------------------ helpers
    async def _has_desk(self) -> bool:
        if self._parts.has_staff_group:
            return True
        return self._other_desk is not None and await self._other_desk.staffed()

    async def _unsatisfied(self, stored: StoredMessage, *, question: bool) -> bool:
        events = await self._tickets.customer_events(stored.message.conversation_id,
                                                     until=stored.message.received_at)
        if not events or (events[-1].kind == "question") != question:
            return False
        return unsatisfied(events)

    def _sla_due(self, priority: str, now: datetime) -> datetime | None:
        return self._hours.add_business_minutes(now, self._config.sla_minutes.get(priority, 60))


def _button_press(item: dict) -> bool:
    """Transcript lines that are button data (👍/👎, language, "talk to a person"), not words."""
    text = item["text"]
    return item["role"] == "user" and (text == CALLBACK_HUMAN or text.startswith(
        (FEEDBACK_PREFIX, LANGUAGE_PREFIX, card.CALLBACK_PREFIX)))
