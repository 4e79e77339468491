"""Telegram send limits: the Redis token buckets for real (shared across processes) and the in-process twin.

Rates are scaled up (10/s instead of 1/s) so the tests run in about a second each;
the arithmetic is the same at production rates.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest
from redis.asyncio import Redis

from channels.telegram.ratelimit import Bucket, LocalRateLimiter, RateLimitUnavailable, RedisRateLimiter, TelegramLimits
from tests.services import fresh_redis_prefix

FAST = 1000.0  # a rate that never binds within these tests


@pytest.fixture
async def redis_prefix():
    async with fresh_redis_prefix() as (url, prefix):
        redis = Redis.from_url(url)
        yield redis, prefix, url
        await redis.aclose()


async def timed_acquires(limiter, chat_ids: list[int]) -> list[float]:
    stamps = []
    for chat_id in chat_ids:
        await limiter.acquire(chat_id)
        stamps.append(time.monotonic())
    return stamps


def gaps(stamps: list[float]) -> list[float]:
    ordered = sorted(stamps)
    return [b - a for a, b in zip(ordered, ordered[1:])]


async def test_one_private_chat_is_spaced_by_its_rate(redis_prefix):
    redis, prefix, _ = redis_prefix
    limiter = RedisRateLimiter(redis, prefix, TelegramLimits(private_chat=Bucket(rate=10.0), overall=Bucket(rate=FAST)))
    stamps = await timed_acquires(limiter, [4242] * 10)
    assert min(gaps(stamps)) >= 0.095
    assert stamps[-1] - stamps[0] >= 0.88
    assert stamps[-1] - stamps[0] < 1.5  # waiting is driven by the returned wait, not by polling slowly


async def test_group_chats_use_the_group_bucket(redis_prefix):
    redis, prefix, _ = redis_prefix
    limits = TelegramLimits(private_chat=Bucket(rate=FAST), group_chat=Bucket(rate=20.0), overall=Bucket(rate=FAST))
    limiter = RedisRateLimiter(redis, prefix, limits)
    group_stamps = await timed_acquires(limiter, [-1001234] * 5)
    private_stamps = await timed_acquires(limiter, [1234] * 5)
    assert min(gaps(group_stamps)) >= 0.045
    assert private_stamps[-1] - private_stamps[0] < 0.045


async def test_chats_do_not_hold_each_other_back_and_burst_is_honoured(redis_prefix):
    redis, prefix, _ = redis_prefix
    limits = TelegramLimits(private_chat=Bucket(rate=2.0, burst=3), overall=Bucket(rate=FAST))
    limiter = RedisRateLimiter(redis, prefix, limits)
    started = time.monotonic()
    for chat_id in (1, 2, 1, 2, 1, 2):  # three each fit in the burst
        await limiter.acquire(chat_id)
    assert time.monotonic() - started < 0.1
    assert await limiter.try_acquire(1) == pytest.approx(0.5, abs=0.05)  # fourth: wait for one token at 2/s
    ttl_ms = await redis.pttl(f"{prefix}:tg:rate:chat:1")
    assert 0 < ttl_ms <= 2500  # idle buckets disappear once they would be full again


def _acquire_in_child(url: str, prefix: str, first_chat: int, count: int, barrier, results) -> None:
    async def run() -> list[float]:
        redis = Redis.from_url(url)
        limits = TelegramLimits(private_chat=Bucket(rate=FAST), overall=Bucket(rate=20.0))
        limiter = RedisRateLimiter(redis, prefix, limits)
        await redis.ping()
        barrier.wait(timeout=30)
        try:
            return await timed_acquires(limiter, list(range(first_chat, first_chat + count)))
        finally:
            await redis.aclose()

    results.put((first_chat, asyncio.run(run())))


async def test_the_global_bucket_is_shared_by_separate_processes(redis_prefix):
    _, prefix, url = redis_prefix
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_acquire_in_child, args=(url, prefix, first, 10, barrier, results))
                for first in (100, 200)]
    for child in children:
        child.start()
    collected = dict(await asyncio.to_thread(lambda: [results.get(timeout=60) for _ in children]))
    for child in children:
        await asyncio.to_thread(child.join, 10)
        assert child.exitcode == 0
    everyone = collected[100] + collected[200]
    assert len(everyone) == 20
    # 20/s overall: no two sends (from either process) closer than 50 ms, 20 sends take >= 0.95 s
    assert min(gaps(everyone)) >= 0.045
    assert max(everyone) - min(everyone) >= 0.9
    # and both processes really competed: their sends interleave rather than run one after the other
    assert min(collected[200]) < max(collected[100]) and min(collected[100]) < max(collected[200])


async def test_unreachable_redis_is_reported_as_unavailable():
    redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(redis, "unused")
    with pytest.raises(RateLimitUnavailable) as info:
        await limiter.acquire(1)
    assert info.value.__cause__ is not None
    await redis.aclose()


async def test_local_limiter_spaces_one_chat_and_shares_the_overall_bucket():
    limiter = LocalRateLimiter(TelegramLimits(private_chat=Bucket(rate=10.0), overall=Bucket(rate=FAST)))
    stamps = await timed_acquires(limiter, [7] * 5)
    assert min(gaps(stamps)) >= 0.095
    overall = LocalRateLimiter(TelegramLimits(private_chat=Bucket(rate=FAST), overall=Bucket(rate=20.0)))
    spread = await timed_acquires(overall, list(range(1, 11)))
    assert min(gaps(spread)) >= 0.045


def test_local_limiter_arithmetic_with_a_controlled_clock():
    now = [1000.0]
    limiter = LocalRateLimiter(TelegramLimits(), clock=lambda: now[0])  # production limits
    assert limiter.try_acquire(-100500) == 0.0
    assert limiter.try_acquire(-100500) == pytest.approx(3.0)  # 20 per minute in a group
    assert limiter.try_acquire(42) == pytest.approx(1 / 30)  # another chat only waits for the overall 30/s
    now[0] += 1 / 30
    assert limiter.try_acquire(42) == 0.0
    assert limiter.try_acquire(42) == pytest.approx(1.0)  # 1 per second in a private chat
    now[0] += 1.0
    assert limiter.try_acquire(42) == 0.0
    assert limiter.try_acquire(-100500) == pytest.approx(3.0 - 1 / 30 - 1.0)
    for chat_id in range(1, 31):  # 30 sends to different chats take one second: the overall bucket binds
        now[0] += 1 / 30
        assert limiter.try_acquire(10_000 + chat_id) == 0.0
        assert limiter.try_acquire(20_000 + chat_id) == pytest.approx(1 / 30)


def test_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        Bucket(rate=0)
    with pytest.raises(ValueError):
        Bucket(rate=1, burst=0.5)
