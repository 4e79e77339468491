"""Production queue: arq on Redis. The API enqueues message ids; ``supportlah worker`` runs them.

Job ids are derived from our message ids, so a message is queued at most once at a
time. Results are not kept (``keep_result=0``): once a job ends its id is free again,
which lets the recovery cron re-enqueue a message whose job was lost.

Every job on the queue is short (a message, a recovery pass, an SLA check), so arq's
in-progress TTL (the longest timeout + 10 s) stays ``job_timeout_seconds + 10``; the
hour-long retention purge runs beside the queue (:func:`workers.upkeep.every_with_lock`).
Jobs a killed worker leaves in progress are taken back within seconds by
:class:`workers.upkeep.OrphanReaper`, and ``supportlah worker`` reconnects with backoff
when Redis or Postgres goes away instead of exiting.
"""
from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Sequence
from datetime import timedelta

from arq import Retry, create_pool, cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from supportlah.admin.wiring import purge_expired
from supportlah.console.wiring import sync_due_websites
from supportlah.escalation_wiring import sla_reminders_job
from workers.ingress import requeue_unanswered
from workers.queue import RetryLater
from workers.upkeep import OrphanReaper, every_with_lock

log = logging.getLogger(__name__)


WEBSITE_SYNC_PERIOD_SECONDS = 600  # how often the websites whose re-sync is due are looked at


def queue_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}:queue"


def health_key(settings: Settings) -> str:
    return f"{queue_name(settings)}:health-check"


# arq's own enqueue (WATCH, EXISTS, MULTI, PSETEX, ZADD) for many jobs in one atomic round trip:
# a job is written only when neither its job key nor its result key exists, as arq does, or
# when its job key outlived its place in the queue (nothing would ever run it).
_ENQUEUE_MANY = """
local queued = 0
for i = 2, #KEYS, 2 do
  local exists = redis.call('EXISTS', KEYS[i], KEYS[i + 1])
  if exists == 1 and redis.call('EXISTS', KEYS[i + 1]) == 0
     and not redis.call('ZSCORE', KEYS[1], ARGV[i + 2]) then
    exists = 0
  end
  if exists == 0 then
    redis.call('PSETEX', KEYS[i], ARGV[1], ARGV[i + 1])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i + 2])
    queued = queued + 1
  end
end
return queued
"""

_ENQUEUE_CHUNK = 500


class ArqQueue:
    def __init__(self, pool: ArqRedis, settings: Settings) -> None:
        self._pool = pool
        self._prefix = settings.redis_prefix
        self._queue_name = queue_name(settings)
        self._enqueue_many = pool.register_script(_ENQUEUE_MANY)

    @classmethod
    async def connect(cls, settings: Settings) -> ArqQueue:
        assert settings.redis_url
        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url), default_queue_name=queue_name(settings))
        return cls(pool, settings)

    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None:
        """Queue one run of ``process_message`` for this message.

        arq refuses a job id that exists, and a job's key exists while it runs. Work that appears
        while the message's job is running (a delivery report asking for a resend, say) may come
        after that job last looked, so a second, follow-up id takes it: at most one run going and
        one waiting per message, like the in-process queue, and nothing waits for the recovery pass.
        """
        primary = f"{self._prefix}:msg:{message_id}"
        defer_by = timedelta(seconds=defer) if defer else None
        if await self._pool.enqueue_job("process_message", message_id, _job_id=primary, _defer_by=defer_by):
            return
        if not await self._pool.exists(in_progress_key_prefix + primary):
            return  # queued, not started: that run will see this work
        await self._pool.enqueue_job("process_message", message_id, _job_id=f"{primary}:again", _defer_by=defer_by)

    async def enqueue_many(self, message_ids: Sequence[str]) -> None:
        """Queue several messages in one round trip, with arq's key layout and job format,
        so ``supportlah worker`` runs them exactly like jobs from :meth:`enqueue`."""
        for start in range(0, len(message_ids), _ENQUEUE_CHUNK):  # a recovery backlog: bounded script calls
            now_ms = timestamp_ms()
            keys: list[str] = [self._queue_name]
            args: list[str | bytes | int] = [self._pool.expires_extra_ms, now_ms]
            for message_id in message_ids[start:start + _ENQUEUE_CHUNK]:
                job_id = f"{self._prefix}:msg:{message_id}"
                keys += [job_key_prefix + job_id, result_key_prefix + job_id]
                args += [serialize_job("process_message", (message_id,), {}, None, now_ms,
                                       serializer=self._pool.job_serializer), job_id]
            await self._enqueue_many(keys=keys, args=args)

    async def close(self) -> None:
        await self._pool.aclose()


async def worker_alive(redis: Redis, settings: Settings) -> bool:
    """A worker wrote its health-check key recently (arq refreshes it every interval)."""
    return bool(await redis.exists(health_key(settings)))


# ------------------------------------------------------------------ worker side
async def process_message(ctx: dict, message_id: str) -> None:
    try:
        await ctx["container"].processor.process(message_id)
    except RetryLater as retry:
        raise Retry(defer=timedelta(seconds=retry.defer)) from retry
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # Postgres dropped the connection (restart, failover): the pool is renewed; try again soon
        # rather than leave the message to the recovery pass.
        log.warning("database connection dropped mid-job; retrying", extra={"message_id": message_id})
        raise Retry(defer=timedelta(seconds=_outage_backoff(ctx))) from exc
    except (OSError, RedisError) as exc:
        # Postgres or Redis unreachable (restarting, failing over): wait it out with backoff.
        log.warning("a backing service is unreachable mid-job; retrying",
                    extra={"message_id": message_id, "error": type(exc).__name__})
        raise Retry(defer=timedelta(seconds=_outage_backoff(ctx))) from exc


def _outage_backoff(ctx: dict) -> float:
    tries = int(ctx.get("job_try") or 1)
    return random.uniform(0.25, 0.5) * min(2 ** (tries - 1), 20)


async def purge_expired_job(container) -> dict:  # noqa: ANN001
    """Retention (PDPA): purge what is older than ``retention_days`` (beside the queue, see :func:`supervise`)."""
    return (await purge_expired(container)).counts


async def sync_websites_job(container) -> int:  # noqa: ANN001
    """Re-crawl the console's websites whose schedule is due (every ten minutes, one pass). A crawl
    can take minutes, so it runs beside the queue (see :func:`supervise`), never as a cron job whose
    timeout would become every message job's in-progress TTL."""
    return await sync_due_websites(container)


async def recover_unanswered(ctx: dict) -> int:
    container = ctx["container"]
    older = timedelta(seconds=container.settings.recovery_after_seconds)
    requeued = await requeue_unanswered(container.store, container.queue, older)
    await container.poll_deliveries()  # parts whose delivery report never came
    return requeued


def _lifecycle(settings: Settings, container=None):  # noqa: ANN001, ANN202
    owned = container is None

    async def startup(ctx: dict) -> None:
        from supportlah.container import build

        ctx["container"] = container if container is not None else await build(settings, start_queue=False)
        log.info("worker ready", extra={"queue": queue_name(settings), "max_jobs": settings.max_jobs})

    async def shutdown(ctx: dict) -> None:
        if owned and ctx.get("container") is not None:
            await ctx["container"].close()

    return startup, shutdown


def make_worker(settings: Settings, container=None, **overrides: object) -> Worker:  # noqa: ANN001
    """The arq worker for these settings. ``container``: run jobs over an existing container
    (tests, benchmarks) instead of building one; ``overrides`` go to arq (``burst=True`` …)."""
    assert settings.redis_url, "the arq worker needs SUPPORTLAH_REDIS_URL"
    startup, shutdown = _lifecycle(settings, container)
    # arq's own tries only back-stop ours: the processor counts attempts in the database
    # and gives up (apology + escalation) itself, so arq must allow more.
    functions = [func(process_message, name="process_message", max_tries=settings.job_max_tries * 6 + 10,
                      timeout=settings.job_timeout_seconds, keep_result=0)]
    period = max(5, min(60, settings.recovery_after_seconds // 2))
    sla_period = max(5, min(60, settings.escalation_reminder_interval_seconds))
    # Cron job ids are "<name>:<time>" with no queue in them: name them after our prefix so two
    # deployments (or tests) on one Redis never take each other's runs.
    prefix = settings.redis_prefix
    options: dict[str, object] = dict(
        functions=functions,
        cron_jobs=[
            cron(recover_unanswered, name=f"{prefix}:recover_unanswered", second=set(range(0, 60, period)),
                 run_at_startup=True, keep_result=0),
            cron(sla_reminders_job, name=f"{prefix}:sla_reminders", second=set(range(0, 60, sla_period)),
                 keep_result=0),
        ],
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


def in_progress_ttl_seconds(settings: Settings) -> float:
    """What arq gives every in-progress key: the longest job timeout + 10 s (all ours are job_timeout)."""
    return settings.job_timeout_seconds + 10


def run_worker(settings: Settings) -> None:
    """Blocking: run until SIGINT/SIGTERM; running jobs get ``shutdown_grace_seconds`` to finish."""
    asyncio.run(supervise(settings))


# What an outage of Redis or Postgres looks like from here. Any Redis error counts: a connection
# dropped inside arq's WATCH surfaces as a WatchError, and exiting would only hand the restart to
# whoever supervises the process.
_CONNECTION_ERRORS = (RedisError, OSError)


async def supervise(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """One worker process: build the container once, then run arq workers over it, starting a new
    one with backoff whenever Redis (or Postgres, at start) goes away, until ``stop`` is set
    (SIGINT/SIGTERM when not given)."""
    from supportlah.container import build

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    backoff = _Backoff()
    container = None
    while container is None and not stop.is_set():
        try:
            container = await build(settings, start_queue=False)
        except (*_CONNECTION_ERRORS, DBAPIError) as exc:
            delay = backoff.next()
            log.warning("cannot start the worker yet; retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                          "retry_in": round(delay, 2)})
            await _sleep_unless(stop, delay)
    if container is None:
        return
    while not await container.index.healthy():  # a worker that cannot search takes no jobs: others can
        delay = backoff.next()
        log.error("cannot open the vector index; taking no jobs until it opens (one process owns an "
                  "embedded index: give each worker its own data dir or use SUPPORTLAH_QDRANT_URL)",
                  extra={"retry_in": round(delay, 2)})
        await _sleep_unless(stop, delay)
        if stop.is_set():
            await container.close()
            return
    current: list[Worker] = []
    reaper = OrphanReaper(container.redis, prefix=settings.redis_prefix, queue_name=queue_name(settings),
                          in_progress_ttl_s=in_progress_ttl_seconds(settings),
                          read_limit=max(settings.max_jobs * 5, 100),
                          running=lambda: list(current[0].tasks) if current else [])
    background = [asyncio.create_task(reaper.run(), name="orphan-reaper"),
                  asyncio.create_task(every_with_lock(container.redis, f"{settings.redis_prefix}:lease:retention",
                                                      settings.retention_interval_seconds,
                                                      lambda: purge_expired_job(container), "retention"),
                                      name="retention"),
                  asyncio.create_task(every_with_lock(container.redis, f"{settings.redis_prefix}:lease:websites",
                                                      WEBSITE_SYNC_PERIOD_SECONDS,
                                                      lambda: sync_websites_job(container), "websites"),
                                      name="websites")]
    backoff = _Backoff()
    reconnected = False
    try:
        while not stop.is_set():
            worker = make_worker(settings, container=container, handle_signals=False)
            current[:] = [worker]
            if reconnected:  # jobs lost with Redis, and messages stored while it was away, are queued again
                background.append(asyncio.create_task(_recover_when_reachable(container, stop), name="recover"))
            running = asyncio.create_task(worker.main(), name="arq-worker")
            ran_since = asyncio.get_running_loop().time()
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                await _stop_worker(worker, running, settings.shutdown_grace_seconds)
                try:
                    await reaper.leave()
                    await worker.pool.delete(worker.health_check_key)
                except (*_CONNECTION_ERRORS,):
                    pass  # Redis is gone too: the records expire on their own
                break
            exc = running.exception()
            await _stop_worker(worker, running, 5.0)
            if exc is None:
                break  # a burst worker finished
            if not isinstance(exc, _CONNECTION_ERRORS):
                raise exc
            if asyncio.get_running_loop().time() - ran_since > 60:
                backoff = _Backoff()  # a new outage after a good minute starts from a short wait
            delay = backoff.next()
            log.warning("lost Redis; reconnecting", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                            "retry_in": round(delay, 2)})
            reconnected = True
            await _sleep_unless(stop, delay)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await container.close()


async def _stop_worker(worker: Worker, running: asyncio.Task, grace: float) -> None:
    """Stop taking jobs, give running ones ``grace`` seconds, cancel the rest, drop the pool."""
    worker.allow_pick_jobs = False
    tasks = [t for t in worker.tasks.values() if not t.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=grace)
    for task in worker.tasks.values():
        task.cancel()
    running.cancel()
    await asyncio.gather(running, *worker.tasks.values(), return_exceptions=True)
    if worker.pool is not None:
        try:
            await worker.pool.aclose()
        except _CONNECTION_ERRORS:
            pass  # the connection is already gone


async def _recover_when_reachable(container, stop: asyncio.Event) -> None:  # noqa: ANN001
    """After Redis came back: re-enqueue every unanswered message as soon as Redis answers again
    (an id whose job survived is skipped by the enqueue), instead of waiting for the recovery cron."""
    backoff = _Backoff(0.25, 2.0)
    while not stop.is_set():
        try:
            count = await requeue_unanswered(container.store, container.queue, None)
        except (*_CONNECTION_ERRORS, DBAPIError) as exc:
            log.debug("recovery after reconnecting waits for Redis", extra={"error": type(exc).__name__})
            await _sleep_unless(stop, backoff.next())
            continue
        log.info("recovered after reconnecting", extra={"count": count})
        return


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


class _Backoff:
    """Exponential backoff with jitter for reconnecting: 0.5 s doubling to 10 s."""

    def __init__(self, first: float = 0.5, ceiling: float = 10.0) -> None:
        self._next = first
        self._ceiling = ceiling

    def next(self) -> float:
        delay = random.uniform(self._next / 2, self._next)
        self._next = min(self._next * 2, self._ceiling)
        return delay
