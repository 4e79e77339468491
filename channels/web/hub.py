"""Live push to web-chat visitors, across processes.

Workers publish reply and delta events; the HTTP process that holds the visitor's
WebSocket delivers them. Embedded mode uses a direct in-process bus; production
uses Redis pub/sub so a worker process can reach a browser connected to any API
process.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict], Awaitable[None]]


class EventBus(Protocol):
    async def publish(self, visitor_id: str, event: dict) -> None: ...

    async def start(self, deliver: Deliver) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def publish(self, visitor_id: str, event: dict) -> None:
        if self._deliver is not None:
            await self._deliver(visitor_id, event)

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None


class RedisBus:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._task: asyncio.Task | None = None

    async def publish(self, visitor_id: str, event: dict) -> None:
        await self._redis.publish(self._channel, json.dumps({"visitor_id": visitor_id, "event": event}))

    async def start(self, deliver: Deliver) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._listen_forever(pubsub, deliver), name="web-hub-listener")

    async def _listen_forever(self, pubsub, deliver: Deliver) -> None:  # noqa: ANN001
        """Listen, and when Redis goes away subscribe again with backoff: without this one Redis
        restart would silently end live replies for every connected page."""
        delay = 0.25
        while True:
            try:
                if pubsub is None:
                    pubsub = self._redis.pubsub()
                    await pubsub.subscribe(self._channel)
                    log.info("web-hub subscription restored")
                    delay = 0.25
                await self._listen(pubsub, deliver)  # closes ``pubsub`` however it ends
                return  # unsubscribed: closing down
            except (RedisError, OSError) as exc:
                log.warning("web-hub subscription lost; resubscribing", extra={"error": type(exc).__name__})
                if pubsub is not None:
                    await pubsub.aclose()
                pubsub = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, pubsub, deliver: Deliver) -> None:  # noqa: ANN001
        try:
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                try:
                    payload = json.loads(item["data"])
                    await deliver(payload["visitor_id"], payload["event"])
                except Exception:
                    log.exception("bad web-hub event dropped")
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class WebHub:
    """Connected sockets per visitor, plus waiters for ``POST /api/chat`` callers."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._sockets: dict[str, set[Callable[[dict], Awaitable[None]]]] = defaultdict(set)
        self._waiters: dict[str, asyncio.Future] = {}

    async def start(self) -> None:
        await self._bus.start(self._deliver_local)

    async def close(self) -> None:
        await self._bus.close()

    def connect(self, visitor_id: str, send: Callable[[dict], Awaitable[None]]) -> None:
        self._sockets[visitor_id].add(send)

    def disconnect(self, visitor_id: str, send: Callable[[dict], Awaitable[None]]) -> None:
        self._sockets[visitor_id].discard(send)
        if not self._sockets[visitor_id]:
            del self._sockets[visitor_id]

    def connected(self, visitor_id: str) -> bool:
        return bool(self._sockets.get(visitor_id))

    async def publish(self, visitor_id: str, event: dict) -> None:
        await self._bus.publish(visitor_id, event)

    async def wait_reply(self, message_id: str, timeout: float) -> dict:
        future = self._waiters.setdefault(message_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            self._waiters.pop(message_id, None)

    async def _deliver_local(self, visitor_id: str, event: dict) -> None:
        if event.get("type") == "reply" and event.get("final", True):
            waiter = self._waiters.get(event.get("message_id", ""))
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        for send in list(self._sockets.get(visitor_id, ())):
            try:
                await send(event)
            except (ConnectionError, RuntimeError):
                self.disconnect(visitor_id, send)
