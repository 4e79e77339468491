"""Building the reply parts a hand-off decision sends: staff-group posts and customer messages.

Every part answers the inbound message being processed (``in_reply_to``), because
the processor delivers a message's parts by that link, and its idempotency key is
``<message id>:esc:<what>`` so a retried job records and sends the very same parts.
"""
from __future__ import annotations

from collections.abc import Callable

from channels.messages import Channel, OutboundMessage
from channels.splitting import clip_text
from channels.telegram.keyboard import KEYBOARD_KEY, Keyboard, encode_keyboard
from escalation.models import Ticket

Splitter = Callable[[Channel, str], list[str]]
NO_KEYBOARD = "[]"  # customer-bound parts: no 👍/👎 under a staff message
MAX_STAFF_POST = 4000  # UTF-16 units: one Telegram message (4,096) with room for a mention


class PartFactory:
    def __init__(self, staff_chat_id: int | None, split: Splitter) -> None:
        self._staff_chat_id = staff_chat_id
        self._split = split

    @property
    def has_staff_group(self) -> bool:
        return self._staff_chat_id is not None

    def deliverable(self, parts: list[OutboundMessage]) -> list[OutboundMessage]:
        """``parts`` without the staff-group posts when there is no staff group (the web console
        then is the only desk: it reads tickets from the database, nothing is posted anywhere)."""
        if self.has_staff_group:
            return parts
        return [part for part in parts if part.channel != Channel.STAFF]

    def staff(self, message_id: str, what: str, ticket: Ticket, text: str, kind: str, *,
              keyboard: Keyboard | None = None, **meta: str) -> OutboundMessage:
        """A post in the staff group about ``ticket`` (without a group: dropped by :meth:`deliverable`)."""
        metadata = {"role": "system", "staff_kind": kind, "ticket_id": ticket.id, **meta}
        if keyboard is not None:
            metadata[KEYBOARD_KEY] = encode_keyboard(keyboard)
        return OutboundMessage(channel=Channel.STAFF, recipient_id=str(self._staff_chat_id or ""),
                               conversation_id=ticket.conversation_id, text=_clip(text or "…"), in_reply_to=message_id,
                               idempotency_key=f"{message_id}:esc:{what}", metadata=metadata)

    def customer(self, message_id: str, what: str, ticket: Ticket, text: str, *, role: str,
                 **meta: str) -> list[OutboundMessage]:
        """``text`` to the ticket's customer on their own channel, split for it."""
        channel = Channel(ticket.channel)
        pieces = self._split(channel, text) or ([text] if text else [])
        return [
            OutboundMessage(
                channel=channel, recipient_id=ticket.customer_id, conversation_id=ticket.conversation_id,
                text=piece, in_reply_to=message_id, idempotency_key=f"{message_id}:esc:{what}:{index}",
                metadata={"role": role, "language": ticket.language, KEYBOARD_KEY: NO_KEYBOARD, "escalate": "false",
                          "last_part": str(index == len(pieces) - 1).lower(), **meta},
            )
            for index, piece in enumerate(pieces)
        ]


def _clip(text: str, limit: int = MAX_STAFF_POST) -> str:
    return clip_text(text, limit)
