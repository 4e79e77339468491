"""Routes reply parts to the sender of the channel they belong to."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

from channels.base import OutboundSender, PermanentChannelError, ProviderRecord
from channels.messages import Channel, DeliveryReceipt, OutboundMessage

DeltaSink = Callable[[str], Awaitable[None]]
Splitter = Callable[[str], list[str]]


@runtime_checkable
class StreamingSender(Protocol):
    """A sender that can show a reply while it is being produced (web chat)."""

    def delta_sink(self, recipient_id: str, message_id: str) -> DeltaSink: ...


@runtime_checkable
class Reconciler(Protocol):
    """A sender whose provider can list what it accepted recently (closes the crash window), and
    that knows how a part it sent looks in that list (a WhatsApp template comes back rendered)."""

    async def recent_sends(self, recipient_id: str, since: datetime) -> list[ProviderRecord]: ...

    async def is_same_message(self, message: OutboundMessage, record: ProviderRecord) -> bool: ...


class OutboundRouter:
    def __init__(self, senders: dict[Channel, OutboundSender], splitters: dict[Channel, Splitter] | None = None) -> None:
        self._senders = senders
        self._splitters = dict(splitters or {})

    def add(self, sender: OutboundSender, splitter: Splitter | None = None) -> None:
        """Register a channel's sender and, if the channel limits message length, how to split for it."""
        self._senders[sender.channel] = sender
        if splitter is not None:
            self._splitters[sender.channel] = splitter

    def channels(self) -> list[Channel]:
        return list(self._senders)

    def sender(self, channel: Channel) -> OutboundSender:
        try:
            return self._senders[channel]
        except KeyError as exc:
            raise PermanentChannelError(f"no outbound sender configured for channel {channel}") from exc

    def split(self, channel: Channel, text: str) -> list[str]:
        if not text.strip():
            return []
        splitter = self._splitters.get(channel)
        return splitter(text) if splitter else [text]

    def delta_sink(self, channel: Channel, recipient_id: str, message_id: str) -> DeltaSink | None:
        sender = self._senders.get(channel)
        if isinstance(sender, StreamingSender):
            return sender.delta_sink(recipient_id, message_id)
        return None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        return await self.sender(message.channel).send(message)

    def can_reconcile(self, channel: Channel) -> bool:
        """The channel's provider can list what it accepted (so a part in doubt can be looked up)."""
        return isinstance(self._senders.get(channel), Reconciler)

    async def is_same_message(self, message: OutboundMessage, record: ProviderRecord) -> bool:
        """Whether the provider's record could be this part: the same body, unless the channel
        knows better (a WhatsApp template send comes back as the rendered template)."""
        sender = self._senders.get(message.channel)
        if isinstance(sender, Reconciler):
            return await sender.is_same_message(message, record)
        return record.body.strip() == message.text.strip()

    async def recent_sends(self, channel: Channel, recipient_id: str, since: datetime) -> list[ProviderRecord] | None:
        """What the provider accepted for this recipient since ``since``; None if it cannot tell us."""
        sender = self._senders.get(channel)
        if isinstance(sender, Reconciler):
            return await sender.recent_sends(recipient_id, since)
        return None
