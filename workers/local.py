"""Embedded-mode backends: an in-process asyncio queue and process-local locks/guards."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from channels.messages import new_id
from workers.queue import RetryLater

log = logging.getLogger(__name__)


class InProcessQueue:
    """asyncio workers in the server process. Durability comes from the store, not from here:
    on restart the composition root re-enqueues every accepted-but-unanswered message."""

    def __init__(self, handler: Callable[[str], Awaitable[None]], *, concurrency: int = 4) -> None:
        self._handler = handler
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._deferred: dict[str, asyncio.TimerHandle] = {}  # message id -> its waiting timer
        self._pending: set[str] = set()
        self._concurrency = concurrency
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run(), name=f"inprocess-worker-{i}") for i in range(self._concurrency)]

    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None:
        if message_id in self._pending:
            waiting = self._deferred.get(message_id)
            if defer > 0 or waiting is None:
                return  # already waiting: same dedupe as arq's job id
            # work that cannot wait (a delivery report's resend) brings a deferred retry forward
            waiting.cancel()
            self._timers.discard(waiting)
            self._deferred.pop(message_id, None)
            self._queue.put_nowait(message_id)
            return
        self._pending.add(message_id)
        self._idle.clear()
        if defer > 0:
            loop = asyncio.get_running_loop()
            handle = loop.call_later(defer, self._release_deferred, message_id)
            self._timers.add(handle)
            self._deferred[message_id] = handle
        else:
            self._queue.put_nowait(message_id)

    def _release_deferred(self, message_id: str) -> None:
        handle = self._deferred.pop(message_id, None)
        if handle is not None:
            self._timers.discard(handle)
        self._queue.put_nowait(message_id)

    async def enqueue_many(self, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            await self.enqueue(message_id)

    async def _run(self) -> None:
        while True:
            message_id = await self._queue.get()
            self._pending.discard(message_id)
            self._inflight += 1
            try:
                await self._handler(message_id)
            except RetryLater as retry:
                log.info("retry later", extra={"message_id": message_id, "defer": retry.defer, "reason": str(retry)})
                await self.enqueue(message_id, defer=retry.defer)
            except Exception:
                log.exception("message handler crashed", extra={"message_id": message_id})
                await self.enqueue(message_id, defer=2.0)
            finally:
                self._inflight -= 1
                self._queue.task_done()
                if not self._pending and self._inflight == 0:
                    self._idle.set()

    async def join(self, timeout: float | None = None) -> None:
        """Wait until nothing is queued, deferred or running (tests and the CLI use this)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


class LocalConversationLocks:
    def __init__(self) -> None:
        self._held: dict[str, str] = {}

    async def acquire(self, conversation_id: str) -> str | None:
        if conversation_id in self._held:
            return None
        token = new_id()
        self._held[conversation_id] = token
        return token

    async def release(self, conversation_id: str, token: str) -> None:
        if self._held.get(conversation_id) == token:
            del self._held[conversation_id]


class LocalSendGuard:
    def __init__(self) -> None:
        self._claimed: set[str] = set()

    async def claim(self, idempotency_key: str) -> bool:
        if idempotency_key in self._claimed:
            return False
        self._claimed.add(idempotency_key)
        return True

    async def holder_alive(self, idempotency_key: str) -> bool:
        return idempotency_key in self._claimed

    async def release(self, idempotency_key: str) -> None:
        self._claimed.discard(idempotency_key)
