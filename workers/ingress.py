"""Store first, then enqueue: the one path every channel's inbound adapter takes."""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from channels.base import AcceptResult
from config.correlation import correlation_id
from channels.messages import InboundMessage
from memory.store import MessageStore
from workers.group_commit import GroupCommit
from workers.queue import Queue

log = logging.getLogger(__name__)


class PipelineIngress:
    """Every channel's inbound path: commit, then enqueue, then acknowledge.

    Concurrent deliveries are group-committed (see :mod:`workers.group_commit`): one
    transaction and one enqueue round trip for all messages that arrive while the
    previous batch is being written, so ingress throughput does not pay a commit per
    message. Each caller still returns only after its own message is durable.
    """

    def __init__(self, store: MessageStore, queue: Queue, *, max_batch: int = 64) -> None:
        self._store = store
        self._queue = queue
        self._batches: GroupCommit[InboundMessage, AcceptResult] = GroupCommit(self._accept_many,
                                                                               max_batch=max_batch)
        self._unqueued: set[str] = set()  # committed, but the queue refused them (Redis away)
        self._requeue: asyncio.Task | None = None

    async def accept(self, message: InboundMessage) -> AcceptResult:
        correlation_id.set(message.id)
        result = await self._batches.submit(message)
        correlation_id.set(result.message_id)
        log.info("duplicate delivery acknowledged" if result.duplicate else "message accepted",
                 extra={"message_id": result.message_id, "channel": message.channel.value,
                        "duplicate": result.duplicate})
        return result

    async def _accept_many(self, messages: Sequence[InboundMessage]) -> list[AcceptResult]:
        """Commit the messages, then enqueue the new ones. An enqueue failure does not lose
        them: they are already durable, and recovery re-enqueues them."""
        results = await self._store.record_inbound_many(messages)
        fresh = [r.message_id for r in results if not r.duplicate]
        try:
            await self._queue.enqueue_many(fresh)
        except Exception:
            log.exception("enqueue failed; the messages are stored and will be queued when the queue is back",
                          extra={"count": len(fresh), "message_ids": fresh})
            self._unqueued.update(fresh)
            if self._requeue is None or self._requeue.done():
                self._requeue = asyncio.create_task(self._enqueue_when_back(), name="ingress-requeue")
        return results

    async def _enqueue_when_back(self) -> None:
        """Retry the enqueue of stored messages with backoff until the queue takes them, so they
        are answered as soon as Redis is back rather than at the next recovery pass."""
        delay = 0.25
        while self._unqueued:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            batch = list(self._unqueued)
            try:
                await self._queue.enqueue_many(batch)
            except Exception as exc:  # still away: keep them, try again later
                log.debug("queue still unavailable", extra={"count": len(batch), "error": type(exc).__name__})
                delay = min(delay * 2, 5.0)
                continue
            self._unqueued.difference_update(batch)
            log.info("queued messages stored while the queue was away", extra={"count": len(batch)})

    async def close(self) -> None:
        if self._requeue is not None:
            self._requeue.cancel()
            await asyncio.gather(self._requeue, return_exceptions=True)


async def requeue_unanswered(store: MessageStore, queue: Queue, older_than: timedelta | None) -> int:
    """Re-enqueue accepted messages nobody finished (crash, lost job). Returns how many."""
    pending = await store.unanswered(older_than)
    await queue.enqueue_many([message_id for message_id, _conversation in pending])
    if pending:
        log.info("re-enqueued unanswered messages", extra={"count": len(pending)})
    return len(pending)
