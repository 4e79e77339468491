"""The hand-off card staff see, its buttons, and the names we give topics.

Pure rendering: the hook gathers the facts, this module words them. Everything is
plain text (the staff sender HTML-escapes it), short enough for one Telegram
message, and readable on a phone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from channels.telegram.keyboard import Button, Keyboard
from config.languages import find_language
from escalation.models import Priority, Ticket, TicketStatus

CALLBACK_PREFIX = "esc:"
ACTIONS = ("claim", "draft", "resolve", "bot", "reopen")
CHANNEL_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "web": "Web chat", "cli": "Terminal"}
PRIORITY_MARKS = {Priority.URGENT: "🔴 urgent", Priority.HIGH: "🟠 high", Priority.NORMAL: "🟢 normal"}
ROLE_MARKS = {"user": "👤", "assistant": "🤖", "staff": "🧑‍💼", "system": "⚙️"}
MAX_TOPIC_NAME = 128
MAX_LINE = 280
MAX_DRAFT = 1200
MAX_CARD = 3900  # below Telegram's 4096, leaving room for escaping differences


@dataclass
class CardFacts:
    """What the card shows besides the ticket's own fields; kept on the ticket to redraw the card."""

    transcript: list[dict] = field(default_factory=list)  # {"role", "text"}, oldest first
    priority_why: list[str] = field(default_factory=list)
    hours_note: str = ""  # e.g. "outside business hours; the customer was told: tomorrow at 9:00 am"

    def stored(self) -> dict:
        return {"transcript": [{"role": i["role"], "text": i["text"]} for i in self.transcript],
                "priority_why": list(self.priority_why), "hours_note": self.hours_note}

    @classmethod
    def of(cls, ticket: Ticket) -> CardFacts:
        facts = ticket.card_facts or {}
        return cls(transcript=list(facts.get("transcript", [])), priority_why=list(facts.get("priority_why", [])),
                   hours_note=str(facts.get("hours_note", "")))


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def topic_name(ticket: Ticket) -> str:
    name = f"#{ticket.number} · {channel_name(ticket.channel)} · {ticket.customer_name or ticket.customer_id}"
    return name[:MAX_TOPIC_NAME]


def callback_data(action: str, number: int) -> str:
    return f"{CALLBACK_PREFIX}{action}:{number}"


def parse_callback(data: str) -> tuple[str, int] | None:
    """("claim", 12) for "esc:claim:12"; None for anything else."""
    if not data.startswith(CALLBACK_PREFIX):
        return None
    action, _, number = data[len(CALLBACK_PREFIX):].partition(":")
    if action not in ACTIONS or not number.isdigit():
        return None
    return action, int(number)


def keyboard(ticket: Ticket) -> Keyboard:
    if ticket.status not in TicketStatus.ACTIVE:
        return ((Button("↩️ Reopen", callback_data("reopen", ticket.number)),),)
    first: list[Button] = []
    if ticket.status == TicketStatus.OPEN:
        first.append(Button("✋ Claim", callback_data("claim", ticket.number)))
    if ticket.draft_text:
        first.append(Button("📤 Send AI draft", callback_data("draft", ticket.number)))
    second = (Button("✅ Resolve", callback_data("resolve", ticket.number)),
              Button("🤖 Return to bot", callback_data("bot", ticket.number)))
    return (tuple(first), second) if first else (second,)


def status_line(ticket: Ticket) -> str:
    who = ticket.assignee_name or "staff"
    return {
        TicketStatus.OPEN: "🆕 open, waiting for someone to claim it",
        TicketStatus.CLAIMED: f"✋ claimed by {who}",
        TicketStatus.WAITING_CUSTOMER: f"💬 {who} replied; waiting for the customer",
        TicketStatus.RESOLVED: f"✅ resolved by {who}; the bot answers again",
        TicketStatus.CLOSED: "🔒 closed",
    }.get(ticket.status, ticket.status)


def render(ticket: Ticket, *, sla_local: datetime | None, topics: bool) -> str:
    """The card for the ticket as it is now; ``sla_local`` is the reply-due time in business-local time."""
    facts = CardFacts.of(ticket)
    priority = PRIORITY_MARKS.get(ticket.priority, ticket.priority)
    if facts.priority_why:
        priority += f" ({', '.join(facts.priority_why)})"
    lines = [
        f"Ticket #{ticket.number} · {channel_name(ticket.channel)} · {ticket.customer_name or ticket.customer_id}",
        f"Status: {status_line(ticket)}",
        f"Priority: {priority}",
        f"Reason: {ticket.reason.replace('_', ' ')} · Language: {_language_name(ticket.language)}",
    ]
    if sla_local is not None and ticket.status in TicketStatus.WAITING_FOR_STAFF:
        lines.append(f"Reply due: {sla_local:%a %d %b %H:%M}")
    if facts.hours_note:
        lines.append(f"🌙 {facts.hours_note}")
    if ticket.summary:
        lines += ["", f"Summary: {_clip(ticket.summary, MAX_LINE)}"]
    if facts.transcript:
        lines += ["", "Last messages:"]
        lines += [f"{ROLE_MARKS.get(item['role'], '•')} {_clip(item['text'], MAX_LINE)}" for item in facts.transcript]
    if ticket.draft_text:
        lines += ["", "AI draft:", _clip(ticket.draft_text, MAX_DRAFT)]
        if ticket.draft_sources:
            names = list(dict.fromkeys(s.get("document", "?") for s in ticket.draft_sources))
            lines.append("Sources: " + ", ".join(names[:5]))
    lines.append("")
    if topics:  # the group may still turn out to have no topics: say what works either way
        lines.append(f"Write in this topic (or reply to this card, or start with #{ticket.number}) to answer the "
                     "customer. /note … stays internal, /bot hands back to the AI, /close closes the ticket.")
    else:
        lines.append(f"Reply to this message (or start with #{ticket.number}) to answer the customer. "
                     "/note … stays internal, /bot hands back to the AI, /close closes the ticket.")
    return _clip("\n".join(lines), MAX_CARD)


def _language_name(code: str) -> str:
    """The language's English name for staff ("Chinese"); a code we do not serve is shown as it is."""
    found = find_language(code)
    return found.name if found is not None else code


def _clip(text: str, limit: int) -> str:
    flat = text.strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
