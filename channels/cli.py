"""The terminal channel (`supportlah ask` / `chat`): the command prints the recorded reply itself."""
from __future__ import annotations

from channels.messages import Channel, DeliveryReceipt, OutboundMessage


class TerminalSender:
    channel = Channel.CLI

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(provider_message_id=message.id, status="sent")

    async def close(self) -> None:
        return None
