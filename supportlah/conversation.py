"""One turn through the real pipeline for the terminal (`ask`, `chat`): store → process → reply."""
from __future__ import annotations

import asyncio

from channels.messages import Channel, InboundMessage, new_id
from supportlah.container import Container
from workers.queue import RetryLater


async def ask_once(container: Container, question: str, *, user: str, max_waits: int = 20) -> dict:
    """Record the question as a CLI-channel message and process it inline (no queue worker needed)."""
    message = InboundMessage(channel=Channel.CLI, provider_message_id=new_id(), sender_id=user, text=question)
    accepted = await container.store.record_inbound(message)
    for _ in range(max_waits):
        try:
            await container.processor.process(accepted.message_id)
            break
        except RetryLater as retry:
            await asyncio.sleep(min(retry.defer, 5.0))
    reply = await container.store.get_reply(accepted.message_id)
    if reply is None:
        raise RuntimeError("no reply was produced; see the logs with -v")
    return {
        "answer": reply.text,
        "language": reply.language,
        "confidence": round(reply.confidence, 4),
        "escalate": reply.escalate,
        "reason": reply.reason,
        "sources": [{"document": s["document"], "chunk_id": s["chunk_id"], "score": s["score"]} for s in reply.sources],
        "backend": reply.backend,
        "message_id": accepted.message_id,
    }
