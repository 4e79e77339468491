"""SLA reminders: ping a ticket's topic when it waits for staff past its reply-due time.

Runs periodically (arq cron in production, the embedded recovery loop otherwise),
possibly in several processes at once: each reminder is claimed with a
compare-and-set on ``sla_reminded_at`` first, so exactly one process sends it. A ticket
still waiting is pinged again every ``SUPPORTLAH_ESCALATION_REMINDER_REPEAT_MINUTES``,
and only while staff are on duty (a reminder due at night goes out when they are back).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from channels.base import ChannelError, OutboundSender
from channels.messages import Channel, OutboundMessage, utcnow
from escalation.config import EscalationConfig
from config.hours import BusinessHours
from escalation.tickets import TicketRepository

log = logging.getLogger(__name__)


class SlaReminders:
    def __init__(self, config: EscalationConfig, tickets: TicketRepository, staff: OutboundSender | None,
                 hours: BusinessHours, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._config = config
        self._tickets = tickets
        self._staff = staff
        self._hours = hours
        self._clock = clock

    async def run_once(self) -> int:
        """Send the reminders due now; returns how many went out."""
        now = self._clock()
        if self._staff is None or self._config.staff_chat_id is None or not self._hours.is_open(now):
            return 0
        sent = 0
        for ticket in await self._tickets.overdue(now, self._config.reminder_repeat):
            if not await self._tickets.claim_reminder(ticket, now):
                continue  # another process is reminding about this one
            due = self._hours.local(ticket.sla_due_at) if ticket.sla_due_at else None
            owner = (f"{ticket.assignee_name} has it." if ticket.assignee_name
                     else "Nobody has claimed it yet.")
            text = (f"⏰ Ticket #{ticket.number} ({ticket.priority}) is still waiting for a reply"
                    + (f"; it was due at {due:%H:%M on %a %d %b}" if due else "") + f". {owner}")
            key = f"sla:{ticket.id}:{now.isoformat()}"
            metadata = {"role": "system", "staff_kind": "notice", "ticket_id": ticket.id}
            if ticket.assignee_id:
                metadata.update(mention_id=ticket.assignee_id, mention_name=ticket.assignee_name or "you")
            message = OutboundMessage(channel=Channel.STAFF, recipient_id=str(self._config.staff_chat_id),
                                      conversation_id=ticket.conversation_id, text=text, idempotency_key=key,
                                      metadata=metadata)
            try:
                await self._staff.send(message)
            except ChannelError as exc:  # claimed but not sent: the next repeat tries again
                log.warning("SLA reminder not delivered", extra={"ticket": ticket.number, "error": str(exc)[:200]})
                continue
            await self._tickets.record(ticket.id, key=key, kind="sla_reminder", actor="system",
                                       detail=f"due {ticket.sla_due_at.isoformat() if ticket.sla_due_at else '-'}")
            sent += 1
        if sent:
            log.info("SLA reminders sent", extra={"count": sent})
        return sent
