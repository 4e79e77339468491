"""The one normalized message type that crosses the edge.

Channel adapters turn vendor payloads into :class:`InboundMessage`; everything
past the queue sees only these types, never a Twilio form or a Telegram update.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import StrEnum

from pydantic import BaseModel, Field

from config.types import Source


class Channel(StrEnum):
    WEB = "web"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    CLI = "cli"
    STAFF = "staff"  # the staff group's console (escalation); never a customer channel


class AttachmentKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Attachment(BaseModel):
    kind: AttachmentKind
    mime_type: str | None = None
    size: int | None = None
    url: str | None = Field(default=None, description="Where to fetch it (provider URL or local path).")
    name: str | None = None


class InboundMessage(BaseModel):
    """A customer message as every channel normalizes it."""

    id: str = Field(default_factory=new_id, description="Our id; the queue carries only this.")
    channel: Channel
    provider_message_id: str = Field(description="The provider's id, unique per channel (dedupe key).")
    sender_id: str = Field(description="The sender's identity on that channel (phone, chat id, visitor id).")
    sender_name: str | None = None
    conversation_id: str | None = Field(default=None, description="Set by the store when it is recorded.")
    text: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    received_at: datetime = Field(default_factory=utcnow)
    reply_to: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StoredInbound(InboundMessage):
    """An inbound message as the store returns it: recorded, so it always belongs to a conversation."""

    conversation_id: str = Field(description="The conversation the store filed it under.")


class OutboundMessage(BaseModel):
    """One part of a reply, addressed to a recipient on a channel."""

    id: str = Field(default_factory=new_id)
    channel: Channel
    recipient_id: str
    conversation_id: str
    text: str
    in_reply_to: str | None = Field(default=None, description="Our id of the inbound message answered.")
    idempotency_key: str = Field(description="Stable across retries so a part is never sent twice.")
    sources: list[Source] = Field(default_factory=list)  # what the reply cites (on its last part)
    metadata: dict[str, str] = Field(default_factory=dict)


class DeliveryReceipt(BaseModel):
    provider_message_id: str | None = None
    status: str = "sent"
