"""Outbound adapter for web chat: push to the visitor's socket; history covers offline visitors."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.messages import Channel, DeliveryReceipt, OutboundMessage
from channels.web.hub import WebHub

DeltaSink = Callable[[str], Awaitable[None]]


class WebChatSender:
    channel = Channel.WEB

    def __init__(self, hub: WebHub) -> None:
        self._hub = hub

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        role = message.metadata.get("role", "assistant")
        # The answer's last part completes the exchange (a waiting POST /api/chat returns it); notices,
        # earlier parts and staff messages are shown as messages of their own.
        final = role == "assistant" and message.metadata.get("last_part", "true") == "true"
        await self._hub.publish(
            message.recipient_id,
            {
                "type": "reply",
                "role": role,
                "message_id": message.in_reply_to or message.id,
                "text": message.text,
                "sources": [source.as_record() for source in message.sources],
                "language": message.metadata.get("language"),
                "escalate": message.metadata.get("escalate") == "true",
                "final": final,
            },
        )
        # The transcript in the store is the visitor's mailbox: a visitor who is offline
        # now sees the reply on the next visit, so a publish is a delivery.
        return DeliveryReceipt(provider_message_id=message.id, status="sent")

    def delta_sink(self, recipient_id: str, message_id: str) -> DeltaSink:
        async def push(piece: str) -> None:
            await self._hub.publish(recipient_id, {"type": "delta", "message_id": message_id, "text": piece})

        return push

    async def close(self) -> None:
        return None
