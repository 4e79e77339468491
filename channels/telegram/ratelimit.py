"""Telegram's send limits, enforced before we call the API instead of after a 429.

Telegram allows about 1 message/s in a private chat, 20 messages/min in a group and
30 messages/s per bot overall. Every worker process sends with the same bot, so the
buckets must be shared: :class:`RedisRateLimiter` keeps them in Redis and checks the
chat bucket and the global bucket in one atomic Lua script (run with EVALSHA), using
the Redis server's clock so all processes agree on time. :class:`LocalRateLimiter`
applies the same rules inside one process for embedded mode.

Both are token buckets that consume only when *both* buckets have a token, so a
message never burns global capacity while it waits for its chat.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

_EPSILON = 1e-9  # tolerance for float rounding of the refill arithmetic


class RateLimiter(Protocol):
    async def acquire(self, chat_id: int) -> None:
        """Return once a message to ``chat_id`` may be sent now."""


class RateLimitUnavailable(Exception):
    """The shared limiter's backing store could not be reached."""


@dataclass(frozen=True)
class Bucket:
    rate: float  # tokens added per second
    burst: float = 1.0  # capacity: how many may go back to back

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be positive and burst at least 1")


@dataclass(frozen=True)
class TelegramLimits:
    """Defaults follow Telegram's published limits with no burst, i.e. evenly spaced sends."""

    private_chat: Bucket = Bucket(rate=1.0)
    group_chat: Bucket = Bucket(rate=20 / 60)
    overall: Bucket = Bucket(rate=30.0)

    def for_chat(self, chat_id: int) -> Bucket:
        # Groups, supergroups and channels have negative ids; users positive.
        return self.group_chat if chat_id < 0 else self.private_chat


# KEYS[1] chat bucket, KEYS[2] global bucket.
# ARGV: chat rate, chat burst, global rate, global burst (tokens/s and tokens).
# Returns 0 when a token was taken from both buckets, else the wait in microseconds.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil or ts == nil then return burst end
  return math.min(burst, tokens + math.max(0, now - ts) * rate)
end
local function store(key, tokens, rate, burst)
  redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local cr, cb = tonumber(ARGV[1]), tonumber(ARGV[2])
local gr, gb = tonumber(ARGV[3]), tonumber(ARGV[4])
local chat = level(KEYS[1], cr, cb) + 1e-9  -- tolerate float rounding of the refill
local all = level(KEYS[2], gr, gb) + 1e-9
if chat >= 1 and all >= 1 then
  store(KEYS[1], math.max(0, chat - 1), cr, cb)
  store(KEYS[2], math.max(0, all - 1), gr, gb)
  return 0
end
local wait = 0
if chat < 1 then wait = math.max(wait, (1 - chat) / cr) end
if all < 1 then wait = math.max(wait, (1 - all) / gr) end
return math.ceil(wait * 1000000)
"""


class RedisRateLimiter:
    """Limits shared by every process that uses the same Redis and ``key_prefix``."""

    def __init__(self, redis: Redis, key_prefix: str, limits: TelegramLimits | None = None) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._limits = limits or TelegramLimits()
        self._script = redis.register_script(_ACQUIRE_LUA)  # EVALSHA, reloading on NOSCRIPT

    def _keys(self, chat_id: int) -> list[str]:
        return [f"{self._prefix}:tg:rate:chat:{chat_id}", f"{self._prefix}:tg:rate:global"]

    async def try_acquire(self, chat_id: int) -> float:
        """Take a token if possible: 0.0 on success, else the seconds to wait before asking again."""
        chat, overall = self._limits.for_chat(chat_id), self._limits.overall
        args = [chat.rate, chat.burst, overall.rate, overall.burst]
        try:
            wait_us = await self._script(keys=self._keys(chat_id), args=args)
        except RedisError as exc:
            raise RateLimitUnavailable(f"rate limiter unavailable: {exc}") from exc
        return int(wait_us) / 1_000_000

    async def acquire(self, chat_id: int) -> None:
        while (wait := await self.try_acquire(chat_id)) > 0:
            await asyncio.sleep(wait)


class LocalRateLimiter:
    """The same buckets in process memory, for embedded mode (one process, no Redis)."""

    _PRUNE_ABOVE = 10_000  # chat buckets kept before idle ones are forgotten

    def __init__(self, limits: TelegramLimits | None = None, *, clock=time.monotonic) -> None:  # noqa: ANN001
        self._limits = limits or TelegramLimits()
        self._clock = clock
        self._chats: dict[int, tuple[float, float]] = {}  # chat id -> (tokens, at)
        self._overall: tuple[float, float] | None = None

    @staticmethod
    def _level(state: tuple[float, float] | None, bucket: Bucket, now: float) -> float:
        if state is None:
            return bucket.burst
        tokens, at = state
        return min(bucket.burst, tokens + max(0.0, now - at) * bucket.rate)

    def try_acquire(self, chat_id: int) -> float:
        """Take a token if possible: 0.0 on success, else the seconds to wait before asking again."""
        now = self._clock()
        chat_bucket, overall_bucket = self._limits.for_chat(chat_id), self._limits.overall
        chat = self._level(self._chats.get(chat_id), chat_bucket, now) + _EPSILON
        overall = self._level(self._overall, overall_bucket, now) + _EPSILON
        if chat >= 1 and overall >= 1:
            self._chats[chat_id] = (max(0.0, chat - 1), now)
            self._overall = (max(0.0, overall - 1), now)
            if len(self._chats) > self._PRUNE_ABOVE:
                self._prune(now)
            return 0.0
        wait = 0.0
        if chat < 1:
            wait = max(wait, (1 - chat) / chat_bucket.rate)
        if overall < 1:
            wait = max(wait, (1 - overall) / overall_bucket.rate)
        return wait

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely: they behave exactly like new ones."""
        full = [cid for cid, state in self._chats.items()
                if self._level(state, self._limits.for_chat(cid), now) >= self._limits.for_chat(cid).burst]
        for cid in full:
            del self._chats[cid]

    async def acquire(self, chat_id: int) -> None:
        while (wait := self.try_acquire(chat_id)) > 0:
            await asyncio.sleep(wait)
