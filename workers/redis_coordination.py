"""Production coordination in Redis: conversation locks and the in-flight send guard."""
from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from channels.messages import new_id

log = logging.getLogger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"


class RedisConversationLocks:
    """``SET NX PX`` locks, extended while held so a long job keeps its conversation,
    and expiring on their own when the holder dies (SIGKILL)."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: float = 30.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = int(ttl_seconds * 1000)
        self._keepers: dict[str, asyncio.Task] = {}

    def _key(self, conversation_id: str) -> str:
        return f"{self._prefix}:lock:conversation:{conversation_id}"

    async def acquire(self, conversation_id: str) -> str | None:
        token = new_id()
        if not await self._redis.set(self._key(conversation_id), token, nx=True, px=self._ttl_ms):
            return None
        self._keepers[token] = asyncio.create_task(self._keep(conversation_id, token))
        return token

    async def _keep(self, conversation_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                if not await self._redis.eval(_EXTEND, 1, self._key(conversation_id), token, self._ttl_ms):
                    log.warning("conversation lock lost", extra={"conversation_id": conversation_id})
                    return
            except Exception:
                log.exception("could not extend conversation lock", extra={"conversation_id": conversation_id})

    async def release(self, conversation_id: str, token: str) -> None:
        keeper = self._keepers.pop(token, None)
        if keeper is not None:
            keeper.cancel()
        await self._redis.eval(_RELEASE, 1, self._key(conversation_id), token)


class RedisSendGuard:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int = 30) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds

    def _key(self, idempotency_key: str) -> str:
        return f"{self._prefix}:sending:{idempotency_key}"

    async def claim(self, idempotency_key: str) -> bool:
        return bool(await self._redis.set(self._key(idempotency_key), "1", nx=True, ex=self._ttl))

    async def holder_alive(self, idempotency_key: str) -> bool:
        return bool(await self._redis.exists(self._key(idempotency_key)))

    async def release(self, idempotency_key: str) -> None:
        await self._redis.delete(self._key(idempotency_key))
