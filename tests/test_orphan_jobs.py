"""Jobs a dead worker left behind, on real Redis: the reaper frees an in-progress key no live
worker claims (and leaves a live worker's alone), and the enqueue rewrites a job key that lost
its place in the queue. Both used to pin a message until a TTL of up to an hour ran out."""
from __future__ import annotations

from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from config.settings import load_settings
from tests.services import fresh_redis_prefix
from workers.arq_queue import ArqQueue, queue_name
from workers.upkeep import OrphanReaper

TTL_S = 40.0


async def test_the_reaper_frees_a_dead_workers_job_and_not_a_live_ones():
    async with fresh_redis_prefix() as (url, prefix):
        redis = Redis.from_url(url)
        try:
            queue = f"{prefix}:queue"
            running_here: list[str] = []
            live = OrphanReaper(redis, prefix=prefix, queue_name=queue, in_progress_ttl_s=TTL_S, read_limit=100,
                                running=lambda: running_here)
            for job in ("orphan", "running", "just-started"):
                await redis.zadd(queue, {f"{prefix}:{job}": 1})
            aged_ms = int(TTL_S * 1000) - 10_000  # started 10 s ago: well past a few missed heartbeats
            await redis.psetex(in_progress_key_prefix + f"{prefix}:orphan", aged_ms, b"1")
            await redis.psetex(in_progress_key_prefix + f"{prefix}:running", aged_ms, b"1")
            await redis.psetex(in_progress_key_prefix + f"{prefix}:just-started", int(TTL_S * 1000), b"1")
            running_here.append(f"{prefix}:running")
            await live.beat()

            assert await live.sweep() == 1
            assert not await redis.exists(in_progress_key_prefix + f"{prefix}:orphan"), "taken back"
            assert await redis.exists(in_progress_key_prefix + f"{prefix}:running"), "a live worker's job stays"
            assert await redis.exists(in_progress_key_prefix + f"{prefix}:just-started"), "too young to judge"

            await live.leave()  # the worker is gone: its job is an orphan too now
            assert await live.sweep() == 1
            assert not await redis.exists(in_progress_key_prefix + f"{prefix}:running")
        finally:  # fresh_redis_prefix deletes every key of the prefix, arq's included
            await redis.aclose()


async def test_enqueue_rewrites_a_job_key_that_lost_its_place_in_the_queue(tmp_path):
    async with fresh_redis_prefix() as (url, prefix):
        settings = load_settings(_env_file=None, data_dir=tmp_path, redis_url=url, redis_prefix=prefix)
        queue = await ArqQueue.connect(settings)
        redis = Redis.from_url(url)
        try:
            await queue.enqueue_many(["m1", "m2"])
            name = queue_name(settings)
            assert await redis.zcard(name) == 2
            await redis.zrem(name, f"{prefix}:msg:m1")  # the job key is there, nothing will ever run it
            await queue.enqueue_many(["m1", "m2"])
            assert await redis.zscore(name, f"{prefix}:msg:m1") is not None, "queued again"
            assert await redis.zcard(name) == 2, "m2 was waiting already: not queued twice"
            assert await redis.exists(job_key_prefix + f"{prefix}:msg:m1")
        finally:  # fresh_redis_prefix deletes every key of the prefix, arq's included
            await redis.aclose()
            await queue.close()
