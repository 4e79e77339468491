"""Production queue: arq on Redis. The API enqueues message ids; ``supportlah worker`` runs them.

Job ids are derived from our message ids, so a message is queued at most once at a
time. Results are not kept (``keep_result=0``): once a job ends its id is free again,
which lets the recovery cron re-enqueue a message whose job was lost.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from arq import Retry, create_pool, cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from supportlah.admin.wiring import purge_expired
from supportlah.console.wiring import sync_due_websites
from supportlah.escalation_wiring import sla_reminders_job
from workers.ingress import requeue_unanswered
from workers.queue import RetryLater

log = logging.getLogger(__name__)


def queue_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}:queue"


def health_key(settings: Settings) -> str:
    return f"{queue_name(settings)}:health-check"


# arq's own enqueue (WATCH, EXISTS, MULTI, PSETEX, ZADD) for many jobs in one atomic round trip:
# a job is written only when neither its job key nor its result key exists, as arq does.
_ENQUEUE_MANY = """
local queued = 0
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i], KEYS[i + 1]) == 0 then
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
        await self._pool.enqueue_job(
            "process_message", message_id, _job_id=f"{self._prefix}:msg:{message_id}",
            _defer_by=timedelta(seconds=defer) if defer else None,
        )

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
        raise Retry(defer=timedelta(seconds=0.5)) from exc


async def purge_expired_job(ctx: dict) -> dict:
    """Retention (PDPA): purge what is older than ``retention_days``, hourly."""
    return (await purge_expired(ctx["container"])).counts


async def sync_websites_job(ctx: dict) -> int:
    """Re-crawl the console's websites whose schedule is due (every ten minutes, one pass)."""
    return await sync_due_websites(ctx["container"])


async def recover_unanswered(ctx: dict) -> int:
    container = ctx["container"]
    older = timedelta(seconds=container.settings.recovery_after_seconds)
    return await requeue_unanswered(container.store, container.queue, older)


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
    functions = [func(process_message, name="process_message", max_tries=settings.job_max_tries * 4 + 10,
                      timeout=settings.job_timeout_seconds, keep_result=0)]
    period = max(5, min(60, settings.recovery_after_seconds // 2))
    sla_period = max(5, min(60, settings.escalation_reminder_interval_seconds))
    options: dict[str, object] = dict(
        functions=functions,
        cron_jobs=[
            cron(recover_unanswered, name="recover_unanswered", second=set(range(0, 60, period)),
                 run_at_startup=True, keep_result=0),
            cron(sla_reminders_job, name="sla_reminders", second=set(range(0, 60, sla_period)), keep_result=0),
            cron(purge_expired_job, name="purge_expired", minute={7}, run_at_startup=False, keep_result=0,
                 timeout=3600),
            cron(sync_websites_job, name="sync_websites", minute=set(range(3, 60, 10)), run_at_startup=False,
                 keep_result=0, timeout=3600),
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


def run_worker(settings: Settings) -> None:
    """Blocking: run until SIGINT/SIGTERM; running jobs get ``shutdown_grace_seconds`` to finish."""
    make_worker(settings).run()
