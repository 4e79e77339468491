"""The scheduled jobs, in one table read by both modes.

Embedded mode runs each as a loop inside the API process (:func:`run_embedded`); production runs
the short ones as arq cron jobs and the long ones beside the queue under a Redis lease
(``supportlah.worker``), so a long job never gives every message job its in-progress TTL.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from config.settings import Settings
from supportlah.admin.wiring import purge_expired
from supportlah.console.wiring import sync_due_websites
from supportlah.escalation_wiring import sla_reminders
from workers.ingress import requeue_unanswered

if TYPE_CHECKING:
    from supportlah.container import Container

log = logging.getLogger(__name__)


class JobPlace(StrEnum):
    """Where a production worker runs a scheduled job."""

    CRON = "cron"  # short: an arq cron job on the message queue
    BESIDE_QUEUE = "beside_queue"  # long (minutes): a task beside the queue, one process at a time by a lease


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    period_seconds: Callable[[Settings], float]
    run: Callable[[Container], Awaitable[object]]
    place: JobPlace
    at_start: bool  # run once as soon as the process starts, then every period


async def recover_unanswered(container: Container) -> int:
    """Re-enqueue messages accepted but unanswered for ``recovery_after_seconds``, and poll the
    delivery of parts whose report never came."""
    older = timedelta(seconds=container.settings.recovery_after_seconds)
    requeued = await requeue_unanswered(container.store, container.queue, older)
    await container.poll_deliveries()
    return requeued


async def retention(container: Container) -> dict[str, int]:
    """Retention (PDPA): purge what is older than ``retention_days``."""
    return (await purge_expired(container)).counts


def _recovery_period(settings: Settings) -> float:
    return max(1, settings.recovery_after_seconds // 2)


SCHEDULED_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("recover_unanswered", _recovery_period, recover_unanswered, JobPlace.CRON, at_start=True),
    ScheduledJob("sla_reminders", lambda s: s.escalation_reminder_interval_seconds, sla_reminders, JobPlace.CRON,
                 at_start=False),
    ScheduledJob("retention", lambda s: s.retention_interval_seconds, retention, JobPlace.BESIDE_QUEUE,
                 at_start=True),
    ScheduledJob("websites", lambda s: s.console_website_check_seconds, sync_due_websites, JobPlace.BESIDE_QUEUE,
                 at_start=False),
)


async def every(seconds: float, job: Callable[[], Awaitable[object]], name: str, *, at_start: bool) -> None:
    """Embedded mode: run ``job`` every ``seconds`` in this process; a failed pass is logged and the
    next period tries again."""
    if not at_start:
        await asyncio.sleep(seconds)
    while True:
        try:
            await job()
        except Exception:
            log.exception("periodic job failed", extra={"job": name})
        await asyncio.sleep(seconds)


def start_embedded(container: Container) -> list[asyncio.Task]:
    """Every scheduled job as a loop in this process (embedded mode: there is no worker)."""
    return [asyncio.create_task(every(job.period_seconds(container.settings), _bound(job, container), job.name,
                                      at_start=job.at_start), name=job.name)
            for job in SCHEDULED_JOBS]


def _bound(job: ScheduledJob, container: Container) -> Callable[[], Awaitable[object]]:
    return lambda: job.run(container)
