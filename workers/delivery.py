"""Delivery is what the provider reports, not what it answered when we sent.

Twilio answers a WhatsApp send ``201 queued`` and tells us later, in a status callback,
whether the message arrived: 63016 (the 24-hour window was closed after all), an
unreachable number, a throttled channel. :class:`DeliveryTracker` applies those reports
to the parts they belong to and acts on the failures:

* outside the window, a free-form part is resent as the approved template (a new part,
  ``<key>:template``), or, with no template configured, staff are told in the ticket's topic;
* a throttled part is resent after a backoff (``<key>:retry<n>``, at most ``max_resends``);
* an unreachable contact is marked so, and staff are told;
* anything else leaves the part ``failed`` and staff are told.

A report can arrive before the worker has committed the provider id it got back (the store
keeps it); :meth:`DeliveryTracker.recorded` applies it once the id is recorded. A part whose
report never comes is polled from the provider, a bounded number of times, by
:meth:`DeliveryTracker.poll_silent`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from channels.base import SEND_AS, TEMPLATE, ChannelError, DeliveryProblem, DeliveryReport
from channels.messages import Channel, utcnow
from memory.models import OutboundPart
from memory.store import MessageStore, StatusChange
from workers.queue import Queue

log = logging.getLogger(__name__)

RESEND_SUFFIX = "retry"
Classifier = Callable[[str | None], DeliveryProblem]  # a channel's reading of its provider's error codes


class DeliveryNotice(Protocol):
    """Tells staff that a customer-bound part could not be delivered (the escalation feature implements it)."""

    async def undelivered(self, part: OutboundPart, reason: str) -> bool:
        """Queue a post about it on the part's message; False when there is nobody to tell."""


class ReportSource(Protocol):
    """A sender that can say what became of a message it sent (Twilio's message resource)."""

    async def delivery_report(self, provider_message_id: str) -> DeliveryReport: ...


class DeliveryTracker:
    def __init__(self, store: MessageStore, queue: Queue, *, can_resend_as_template: bool,
                 classifiers: dict[Channel, Classifier] | None = None, notice: DeliveryNotice | None = None,
                 max_resends: int = 3, base_backoff: float = 30.0) -> None:
        self._store = store
        self._queue = queue
        self._templates = can_resend_as_template
        self._classifiers = dict(classifiers or {})
        self._notice = notice
        self._max_resends = max_resends
        self._base_backoff = base_backoff

    def set_notice(self, notice: DeliveryNotice | None) -> None:
        self._notice = notice

    async def record_delivery(self, report: DeliveryReport) -> bool:
        """Apply one report (a status callback); False when its part is not known yet (it is kept)."""
        change = await self._store.record_status(report.channel, report.provider_message_id, report.status,
                                                 report.error_code)
        if change is None:
            log.info("delivery report for a message id not recorded yet; kept",
                     extra={"provider_message_id": report.provider_message_id, "status": report.status})
            return False
        await self._act_on(change, report)
        return True

    async def recorded(self, channel: Channel, provider_message_id: str,
                       early: list[tuple[str, str | None]] | None = None) -> None:
        """The worker recorded this provider id on its part: apply the reports that came first.

        ``early`` are those reports (oldest first) when the worker took them from the store in the
        same statement that recorded the id (:meth:`MessageStore.mark_sent`); None: take them now.
        """
        if channel not in self._classifiers:  # only channels that report delivery (Twilio) keep early reports
            return
        if early is None:
            early = await self._store.take_early_statuses(channel, provider_message_id)
        for status, error_code in early:
            change = await self._store.record_status(channel, provider_message_id, status, error_code)
            if change is not None:
                await self._act_on(change, DeliveryReport(channel, provider_message_id, status, error_code))

    async def poll_silent(self, channel: Channel, source: ReportSource, *, quiet_for: timedelta,
                          horizon: timedelta = timedelta(hours=24), limit: int = 50) -> int:
        """Ask the provider about parts sent more than ``quiet_for`` ago (and less than ``horizon``)
        that never got a final report: a lost callback must not leave a failure unnoticed."""
        now = utcnow()
        asked = 0
        for part in await self._store.parts_awaiting_report(channel, now - quiet_for, now - horizon, limit):
            try:
                report = await source.delivery_report(part.provider_message_id or "")
            except ChannelError as exc:
                log.warning("could not ask the provider about a part", extra={"part_id": part.id, "code": exc.code})
                continue
            asked += 1
            if report.status not in ("queued", "accepted", "sending", "sent"):
                await self.record_delivery(report)
        return asked

    async def _act_on(self, change: StatusChange, report: DeliveryReport) -> None:
        if not change.failed_now:
            return
        part = change.part
        problem = report.problem or self._classify(report)
        code = report.error_code or "none"
        extra = {"part_id": part.id, "problem": problem.value, "error_code": code}
        log.warning("provider reported a part undelivered", extra=extra)
        if problem is DeliveryProblem.OUTSIDE_WINDOW and (part.meta or {}).get(SEND_AS) != TEMPLATE:
            if self._templates:
                await self._resend(part, TEMPLATE, {SEND_AS: TEMPLATE}, defer=0.0)
                return
            reason = (f"WhatsApp's 24-hour window is closed ({code}) and no approved template is configured "
                      "(SUPPORTLAH_TWILIO_TEMPLATE_CONTENT_SID)")
        elif problem is DeliveryProblem.RATE_LIMITED:
            resends = part.idempotency_key.count(f":{RESEND_SUFFIX}")
            if resends < self._max_resends:
                backoff = min(self._base_backoff * 2 ** resends, 3600.0)
                await self._resend(part, f"{RESEND_SUFFIX}{resends + 1}", {}, defer=backoff)
                return
            reason = f"the channel kept refusing it as too many messages ({code}), {resends + 1} tries"
        elif problem is DeliveryProblem.UNREACHABLE:
            await self._store.mark_unreachable(Channel(part.channel), part.recipient_id)
            reason = f"the customer cannot be reached on this number ({code})"
        else:
            reason = f"the provider reported it {report.status} ({code})"
        await self._tell_staff(part, reason)

    def _classify(self, report: DeliveryReport) -> DeliveryProblem:
        classify = self._classifiers.get(report.channel)
        return classify(report.error_code) if classify is not None else DeliveryProblem.OTHER

    async def _resend(self, part: OutboundPart, suffix: str, meta: dict[str, str], *, defer: float) -> None:
        resend = await self._store.add_resend(part, suffix, meta)
        if resend is None:  # a repeated report: the resend exists and its job was enqueued then
            return
        log.info("resending an undelivered part", extra={"part_id": part.id, "resend_id": resend.id, "as": suffix})
        await self._enqueue(part.inbound_message_id, defer)

    async def _tell_staff(self, part: OutboundPart, reason: str) -> None:
        if self._notice is not None and await self._notice.undelivered(part, reason):
            await self._store.reopen(part.inbound_message_id or "")
            await self._enqueue(part.inbound_message_id, 0.0)

    async def _enqueue(self, message_id: str | None, defer: float) -> None:
        if message_id is None:
            return
        try:
            await self._queue.enqueue(message_id, defer=defer)
        except Exception:  # durable already: the message is unfinished, so the recovery pass enqueues it
            log.exception("enqueue after a delivery report failed; recovery will pick it up",
                          extra={"message_id": message_id})


