"""``supportlah worker``: the arq worker's settings and lifecycle, composed here.

The queue's reusable pieces (the enqueue side, the job function, backoff) live in
``workers.arq_queue``; what a worker process runs — the container it builds, the cron jobs and the
long jobs beside the queue from :data:`supportlah.schedule.SCHEDULED_JOBS` — is decided here, at
the composition root.
"""
from __future__ import annotations

import asyncio
import logging
import signal

from arq import cron
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Worker
from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from supportlah.container import Container, build
from supportlah.schedule import SCHEDULED_JOBS, JobPlace, ScheduledJob
from workers.arq_queue import (
    CONNECTION_ERRORS,
    Backoff,
    health_key,
    in_progress_ttl_seconds,
    message_function,
    queue_name,
    recover_when_reachable,
    sleep_unless,
    stop_worker,
)
from workers.upkeep import OrphanReaper, every_with_lock

log = logging.getLogger(__name__)


def _lifecycle(settings: Settings, container: Container | None):  # noqa: ANN202
    owned = container is None

    async def startup(ctx: dict) -> None:
        ctx["container"] = container if container is not None else await build(settings, start_queue=False)
        log.info("worker ready", extra={"queue": queue_name(settings), "max_jobs": settings.max_jobs})

    async def shutdown(ctx: dict) -> None:
        if owned and ctx.get("container") is not None:
            await ctx["container"].close()

    return startup, shutdown


def _cron_job(job: ScheduledJob, settings: Settings) -> CronJob:
    """One scheduled job as an arq cron: every ``period`` seconds within the minute (5 to 60)."""
    period = max(5, min(60, int(job.period_seconds(settings))))

    async def run(ctx: dict) -> object:
        return await job.run(ctx["container"])

    run.__qualname__ = run.__name__ = job.name
    # Cron job ids are "<name>:<time>" with no queue in them: name them after our prefix so two
    # deployments (or tests) on one Redis never take each other's runs.
    return cron(run, name=f"{settings.redis_prefix}:{job.name}", second=set(range(0, 60, period)),
                run_at_startup=job.at_start, keep_result=0)


def make_worker(settings: Settings, container: Container | None = None, **overrides: object) -> Worker:
    """The arq worker for these settings. ``container``: run jobs over an existing container
    (tests, benchmarks) instead of building one; ``overrides`` go to arq (``burst=True`` …)."""
    assert settings.is_production_queue, "the arq worker needs SUPPORTLAH_REDIS_URL"
    startup, shutdown = _lifecycle(settings, container)
    options: dict[str, object] = dict(
        functions=[message_function(settings)],
        cron_jobs=[_cron_job(job, settings) for job in SCHEDULED_JOBS if job.place is JobPlace.CRON],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=queue_name(settings),
        health_check_key=health_key(settings),
        health_check_interval=settings.worker_health_seconds,
        max_jobs=settings.max_jobs,
        job_timeout=settings.job_timeout_seconds,
        keep_result=0,
        job_completion_wait=settings.shutdown_grace_seconds,
        poll_delay=settings.worker_poll_seconds,
    )
    options.update(overrides)
    return Worker(**options)  # type: ignore[arg-type]


def run_worker(settings: Settings) -> None:
    """Blocking: run until SIGINT/SIGTERM; running jobs get ``shutdown_grace_seconds`` to finish."""
    asyncio.run(supervise(settings))


def _beside_queue(container: Container, settings: Settings) -> list[asyncio.Task]:
    """The long scheduled jobs, each once per period across all workers (a Redis lease)."""
    tasks = []
    for job in SCHEDULED_JOBS:
        if job.place is not JobPlace.BESIDE_QUEUE:
            continue
        tasks.append(asyncio.create_task(
            every_with_lock(container.redis, f"{settings.redis_prefix}:lease:{job.name}",
                            job.period_seconds(settings), _bound(job, container), job.name),
            name=job.name))
    return tasks


def _bound(job: ScheduledJob, container: Container):  # noqa: ANN202
    return lambda: job.run(container)


async def supervise(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """One worker process: build the container once, then run arq workers over it, starting a new
    one with backoff whenever Redis (or Postgres, at start) goes away, until ``stop`` is set
    (SIGINT/SIGTERM when not given)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    backoff = Backoff()
    container = None
    while container is None and not stop.is_set():
        try:
            container = await build(settings, start_queue=False)
        except (*CONNECTION_ERRORS, DBAPIError) as exc:
            delay = backoff.next()
            log.warning("cannot start the worker yet; retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                          "retry_in": round(delay, 2)})
            await sleep_unless(stop, delay)
    if container is None:
        return
    while not await container.index.healthy():  # a worker that cannot search takes no jobs: others can
        delay = backoff.next()
        log.error("cannot open the vector index; taking no jobs until it opens (one process owns an "
                  "embedded index: give each worker its own data dir or use SUPPORTLAH_QDRANT_URL)",
                  extra={"retry_in": round(delay, 2)})
        await sleep_unless(stop, delay)
        if stop.is_set():
            await container.close()
            return
    current: list[Worker] = []
    reaper = OrphanReaper(container.redis, prefix=settings.redis_prefix, queue_name=queue_name(settings),
                          in_progress_ttl_s=in_progress_ttl_seconds(settings),
                          read_limit=max(settings.max_jobs * 5, 100),
                          running=lambda: list(current[0].tasks) if current else [])
    background = [asyncio.create_task(reaper.run(), name="orphan-reaper"), *_beside_queue(container, settings)]
    backoff = Backoff()
    reconnected = False
    try:
        while not stop.is_set():
            worker = make_worker(settings, container=container, handle_signals=False)
            current[:] = [worker]
            if reconnected:  # jobs lost with Redis, and messages stored while it was away, are queued again
                background.append(asyncio.create_task(
                    recover_when_reachable(container.store, container.queue, stop), name="recover"))
            running = asyncio.create_task(worker.main(), name="arq-worker")
            ran_since = asyncio.get_running_loop().time()
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                await stop_worker(worker, running, settings.shutdown_grace_seconds)
                try:
                    await reaper.leave()
                    await worker.pool.delete(worker.health_check_key)
                except CONNECTION_ERRORS:
                    pass  # Redis is gone too: the records expire on their own
                break
            exc = running.exception()
            await stop_worker(worker, running, 5.0)
            if exc is None:
                break  # a burst worker finished
            if not isinstance(exc, CONNECTION_ERRORS):
                raise exc
            if asyncio.get_running_loop().time() - ran_since > 60:
                backoff = Backoff()  # a new outage after a good minute starts from a short wait
            delay = backoff.next()
            log.warning("lost Redis; reconnecting", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                            "retry_in": round(delay, 2)})
            reconnected = True
            await sleep_unless(stop, delay)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await container.close()
