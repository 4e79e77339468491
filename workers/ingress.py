"""Store first, then enqueue: the one path every channel's inbound adapter takes."""
from __future__ import annotations

import logging
from datetime import timedelta

from channels.base import AcceptResult
from config.correlation import correlation_id
from channels.messages import InboundMessage
from memory.store import MessageStore
from workers.queue import Queue

log = logging.getLogger(__name__)


class PipelineIngress:
    def __init__(self, store: MessageStore, queue: Queue) -> None:
        self._store = store
        self._queue = queue

    async def accept(self, message: InboundMessage) -> AcceptResult:
        """Commit the message, then enqueue it. An enqueue failure does not lose the message:
        it is already durable, and recovery re-enqueues it."""
        correlation_id.set(message.id)
        result = await self._store.record_inbound(message)
        correlation_id.set(result.message_id)
        extra = {"message_id": result.message_id, "channel": message.channel.value, "duplicate": result.duplicate}
        if result.duplicate:
            log.info("duplicate delivery acknowledged", extra=extra)
            return result
        try:
            await self._queue.enqueue(result.message_id)
        except Exception:
            log.exception("enqueue failed; the message is stored and recovery will pick it up", extra=extra)
        else:
            log.info("message accepted", extra=extra)
        return result


async def requeue_unanswered(store: MessageStore, queue: Queue, older_than: timedelta | None) -> int:
    """Re-enqueue accepted messages nobody finished (crash, lost job). Returns how many."""
    pending = await store.unanswered(older_than)
    for message_id, _conversation in pending:
        await queue.enqueue(message_id)
    if pending:
        log.info("re-enqueued unanswered messages", extra={"count": len(pending)})
    return len(pending)
