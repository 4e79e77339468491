"""The queue seam: it carries message ids, never payloads (the store has the payload)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RetryLater(Exception):
    """Raised by the processor: try this message again after ``defer`` seconds."""

    def __init__(self, reason: str, defer: float = 1.0) -> None:
        super().__init__(reason)
        self.defer = defer


class Queue(Protocol):
    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None: ...

    async def enqueue_many(self, message_ids: Sequence[str]) -> None:
        """Enqueue several ids at once (one round trip); an id already waiting is skipped."""

    async def close(self) -> None: ...


class ConversationLocks(Protocol):
    """At most one worker handles a conversation at a time, across all processes."""

    async def acquire(self, conversation_id: str) -> str | None:
        """Return a token when acquired, None when someone else holds it."""

    async def release(self, conversation_id: str, token: str) -> None: ...


class SendGuard(Protocol):
    """In-flight guard around provider calls (Redis ``SET NX``): one sender per reply part."""

    async def claim(self, idempotency_key: str) -> bool: ...

    async def holder_alive(self, idempotency_key: str) -> bool:
        """True while a live sender holds the claim (a crashed holder's claim expires)."""

    async def release(self, idempotency_key: str) -> None: ...
