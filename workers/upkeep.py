"""What keeps an arq queue moving when workers die: orphaned jobs are taken back, and the
periodic work that must not sit on the message queue runs beside it.

arq marks a job it starts with an in-progress key whose TTL is the longest job timeout plus
10 s, and a worker reads only the oldest few hundred queued jobs per poll. A worker killed
with SIGKILL leaves the in-progress keys of its running jobs behind: until they expire those
jobs cannot run, and after a few kills the oldest slots hold nothing but orphans, so the
whole queue stalls. :class:`OrphanReaper` makes that a matter of seconds:

* every worker process publishes, once a second, the ids of the jobs it is running
  (one hash, ``<prefix>:workers``, field = worker id);
* every worker, once a second, looks at the head of the queue; an in-progress key older
  than a few heartbeats whose job no live worker claims belongs to a dead worker, and is
  deleted, so the next poll starts the job again.

Wrongly freeing a job that is in fact running (a worker frozen for seconds) costs at most a
second run that finds the conversation locked or the message done: the processor, not the
queue, guarantees that nothing is answered or sent twice.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels.messages import new_id

log = logging.getLogger(__name__)

# Delete an in-progress key only if it is still the one we saw (a fresh one has a longer TTL).
_DELETE_IF_AGED = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and ttl <= tonumber(ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OrphanReaper:
    """Heartbeat of this worker's running jobs, and the sweep that frees dead workers' jobs."""

    def __init__(self, redis: Redis, *, prefix: str, queue_name: str, in_progress_ttl_s: float,
                 read_limit: int, running: Callable[[], Iterable[str]], beat_seconds: float = 1.0) -> None:
        self._redis = redis
        self._workers_key = f"{prefix}:workers"
        self._queue_name = queue_name
        self._ttl_ms = int(in_progress_ttl_s * 1000)
        self._read_limit = read_limit
        self._running = running
        self._beat = beat_seconds
        self._stale_ms = int(beat_seconds * 3000) + 1000  # a worker silent this long is dead
        self.worker_id = new_id()
        self._delete_if_aged = redis.register_script(_DELETE_IF_AGED)
        self.reaped = 0

    async def run(self) -> None:
        """Beat and sweep until cancelled; Redis outages are waited out, not fatal."""
        failing = False
        while True:
            try:
                await self.beat()
                await self.sweep()
                if failing:
                    log.info("orphan reaper reconnected to Redis")
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("orphan reaper cannot reach Redis; retrying", extra={"error": type(exc).__name__})
                failing = True
            await asyncio.sleep(self._beat)

    async def beat(self) -> None:
        now = _now_ms()
        record = json.dumps({"at": now, "jobs": sorted(self._running())})
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._workers_key, self.worker_id, record)
            pipe.pexpire(self._workers_key, 86_400_000)
            await pipe.execute()

    async def leave(self) -> None:
        """A worker stopping cleanly says so, so its (finished) jobs are not waited on."""
        await self._redis.hdel(self._workers_key, self.worker_id)

    async def sweep(self) -> int:
        """Free the in-progress keys of jobs at the head of the queue that no live worker runs."""
        now = _now_ms()
        head = await self._redis.zrangebyscore(self._queue_name, "-inf", now, start=0, num=self._read_limit * 2)
        if not head:
            return 0
        job_ids = [raw.decode() for raw in head]
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.pttl(in_progress_key_prefix + job_id)
            ttls = await pipe.execute()
        grace_ms = self._stale_ms + 1000
        aged = [(job_id, ttl) for job_id, ttl in zip(job_ids, ttls)
                if ttl > 0 and self._ttl_ms - ttl > grace_ms]
        if not aged:
            return 0
        claimed = await self._claimed(now)
        freed = 0
        for job_id, ttl in aged:
            if job_id in claimed:
                continue
            freed += int(await self._delete_if_aged(keys=[in_progress_key_prefix + job_id], args=[ttl]))
        if freed:
            self.reaped += freed
            log.warning("took back jobs left in progress by a dead worker", extra={"count": freed})
        return freed

    async def _claimed(self, now: int) -> set[str]:
        """Job ids live workers say they run; the records of dead workers are dropped."""
        claimed: set[str] = set()
        dead = []
        for worker_id, raw in (await self._redis.hgetall(self._workers_key)).items():
            try:
                record = json.loads(raw)
                at, jobs = int(record["at"]), record["jobs"]
            except (ValueError, KeyError, TypeError):
                dead.append(worker_id)
                continue
            if now - at > self._stale_ms:
                dead.append(worker_id)
            else:
                claimed.update(jobs)
        if dead:
            await self._redis.hdel(self._workers_key, *dead)
        return claimed


async def every_with_lock(redis: Redis, key: str, period: float, job: Callable[[], Awaitable[object]],
                          name: str) -> None:
    """Run ``job`` once per ``period`` across all worker processes (a ``SET NX`` lease of that
    length). Long jobs such as the retention purge run here rather than on the message queue, so
    they never give the queue's in-progress keys their own long TTL."""
    while True:
        try:
            if await redis.set(key, "1", nx=True, ex=max(1, int(period))):
                await job()
        except asyncio.CancelledError:
            raise
        except Exception:  # the next period tries again; the error is logged with its traceback
            log.exception("periodic job failed", extra={"job": name})
        await asyncio.sleep(min(period, 60.0))


def _now_ms() -> int:
    return int(time.time() * 1000)
