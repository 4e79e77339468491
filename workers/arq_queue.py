"""Production queue: arq on Redis. The API enqueues message ids; ``supportlah worker`` runs them
(its settings and lifecycle are composed in ``supportlah.worker``; this module holds the queue's
reusable pieces).

Job ids are derived from our message ids, so a message is queued at most once at a
time. Results are not kept (``keep_result=0``): once a job ends its id is free again,
which lets the recovery cron re-enqueue a message whose job was lost.

Every job on the queue is short (a message, a recovery pass, an SLA check), so arq's
in-progress TTL (the longest timeout + 10 s) stays ``job_timeout_seconds + 10``; the
hour-long retention purge runs beside the queue (:func:`workers.upkeep.every_with_lock`).
Jobs a killed worker leaves in progress are taken back within seconds by
:class:`workers.upkeep.OrphanReaper`, and the worker reconnects with backoff (:class:`Backoff`)
when Redis or Postgres goes away instead of exiting.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from arq import Retry, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from workers.ingress import requeue_unanswered
from workers.queue import Queue, RetryLater

log = logging.getLogger(__name__)


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


def message_function(settings: Settings) -> Function:
    """The one job function on the queue. arq's own tries only back-stop ours: the processor counts
    attempts in the database and gives up (apology + escalation) itself, so arq must allow more."""
    return func(process_message, name="process_message", max_tries=settings.job_max_tries * 6 + 10,
                timeout=settings.job_timeout_seconds, keep_result=0)


def in_progress_ttl_seconds(settings: Settings) -> float:
    """What arq gives every in-progress key: the longest job timeout + 10 s (all ours are job_timeout)."""
    return settings.job_timeout_seconds + 10


# What an outage of Redis or Postgres looks like from here. Any Redis error counts: a connection
# dropped inside arq's WATCH surfaces as a WatchError, and exiting would only hand the restart to
# whoever supervises the process.
CONNECTION_ERRORS = (RedisError, OSError)


async def stop_worker(worker: Worker, running: asyncio.Task, grace: float) -> None:
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
        except CONNECTION_ERRORS:
            pass  # the connection is already gone


async def recover_when_reachable(store, queue: Queue, stop: asyncio.Event) -> None:  # noqa: ANN001 - MessageStore
    """After Redis came back: re-enqueue every unanswered message as soon as Redis answers again
    (an id whose job survived is skipped by the enqueue), instead of waiting for the recovery cron."""
    backoff = Backoff(0.25, 2.0)
    while not stop.is_set():
        try:
            count = await requeue_unanswered(store, queue, None)
        except (*CONNECTION_ERRORS, DBAPIError) as exc:
            log.debug("recovery after reconnecting waits for Redis", extra={"error": type(exc).__name__})
            await sleep_unless(stop, backoff.next())
            continue
        log.info("recovered after reconnecting", extra={"count": count})
        return


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


class Backoff:
    """Exponential backoff with jitter for reconnecting: 0.5 s doubling to 10 s."""

    def __init__(self, first: float = 0.5, ceiling: float = 10.0) -> None:
        self._next = first
        self._ceiling = ceiling

    def next(self) -> float:
        delay = random.uniform(self._next / 2, self._next)
        self._next = min(self._next * 2, self._ceiling)
        return delay
