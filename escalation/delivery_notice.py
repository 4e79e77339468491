"""Telling staff, in the ticket's topic, that a message to the customer was not delivered.

The provider's report comes after the staff reply was confirmed as sent (Twilio answers
``201 queued`` and reports the failure later), so the 👌 under the staff message can be
followed by this notice; it is an ordinary staff-group part on the same inbound message,
sent exactly once like every other.
"""
from __future__ import annotations

from typing import Protocol

from escalation.parts import PartFactory
from escalation.tickets import TicketRepository
from memory.models import OutboundPart


class PartSink(Protocol):
    async def add_outbound(self, part, *, role: str) -> bool: ...  # noqa: ANN001  (OutboundMessage)


class StaffDeliveryNotice:
    """:class:`workers.delivery.DeliveryNotice` for the staff group."""

    def __init__(self, tickets: TicketRepository, parts: PartFactory, store: PartSink) -> None:
        self._tickets = tickets
        self._parts = parts
        self._store = store

    async def undelivered(self, part: OutboundPart, reason: str) -> bool:
        if not self._parts.has_staff_group or part.inbound_message_id is None:
            return False
        ticket = await self._tickets.latest_for(part.conversation_id)
        if ticket is None:  # an assistant reply in a conversation staff never took: the part stays failed
            return False
        await self._tickets.record(ticket.id, key=f"{part.idempotency_key}:undelivered", kind="delivery_failed",
                                   actor="system", detail=reason)
        post = self._parts.staff(part.inbound_message_id, f"undelivered:{part.id}", ticket,
                                 f"⚠️ Not delivered to the customer: {reason}", "notice")
        return await self._store.add_outbound(post, role="system")
