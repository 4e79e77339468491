"""Conversation tables: contacts, conversations, inbound messages, replies, outbound parts.

The life of a customer message is visible here: an ``inbound_messages`` row is
written before the provider gets its 200; a ``replies`` row (unique per inbound
message) records what the agent decided; ``outbound_messages`` rows are the
parts actually sent, each with an idempotency key and a delivery state.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum, nonmember

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime


class InboundStatus(StrEnum):
    QUEUED = "queued"  # stored, waiting for a worker
    PROCESSING = "processing"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    FAILED = "failed"  # permanent failure, visible to staff
    DONE = nonmember((ANSWERED, ESCALATED, FAILED))


class PartState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # the provider call is (or was) in flight
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    REPLACED = "replaced"  # the provider reported it undelivered and a resend part took its place
    DONE = nonmember((SENT, DELIVERED, READ, REPLACED))  # never sent again


class ConversationMode(StrEnum):
    """Who answers the customer: the bot, or staff while a ticket is active (the bot stays quiet)."""

    BOT = "bot"
    HUMAN = "human"


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(16))
    channel_user_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16), default=ConversationMode.BOT)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    context_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # /reset: earlier turns are forgotten


class InboundMessageRow(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_inbound_messages_conversation_order", "conversation_id", "received_at", "id"),
        Index("ix_inbound_messages_status_received", "status", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    reply_to: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReplyRow(Base):
    """What the agent decided for one inbound message; exactly one per message."""

    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    inbound_message_id: Mapped[str] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    escalate: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(64))
    sources: Mapped[list] = mapped_column(JSON, default=list)
    backend: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboundPart(Base):
    """One provider send. The idempotency key is stable across retries of the same job."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_provider", "channel", "provider_message_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    inbound_message_id: Mapped[str | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="assistant")  # assistant | staff | system
    part_index: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=PartState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Feedback(Base):
    """A customer's 👍 / 👎 on one of our replies."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("inbound_message_id", "source_message_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    inbound_message_id: Mapped[str] = mapped_column(String(32))  # the message whose answer was rated
    source_message_id: Mapped[str] = mapped_column(String(32))  # the button press that carried the rating
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EarlyDeliveryStatus(Base):
    """A provider status callback for a message id we have not recorded yet.

    Twilio can report a fast failure before our worker has committed the SID it got back,
    and it never resends a callback; the report waits here and is applied when the SID is
    recorded on its part.
    """

    __tablename__ = "early_delivery_statuses"
    __table_args__ = (Index("ix_early_delivery_statuses_provider", "channel", "provider_message_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMigration(Base):
    """A Telegram group that became a supergroup (new chat id): where to post instead of the configured id."""

    __tablename__ = "chat_migrations"

    old_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    new_chat_id: Mapped[int] = mapped_column(BigInteger)
    migrated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
