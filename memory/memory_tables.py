"""Tables behind conversation memory: short-term turns (embedded mode), rolling summaries,
contact profiles and the durable facts customers state about themselves.

Every row hangs off a ``contacts`` row with ``ON DELETE CASCADE``, and every fact also
off the inbound message it was read from, so erasing a customer or purging a message
removes what we remembered from it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime


class MemoryTurnRow(Base):
    """One turn of short-term memory when there is no Redis (embedded mode).

    Expiry slides with activity: a conversation's turns count as expired once its newest
    turn is older than the TTL.
    """

    __tablename__ = "memory_turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "message_id", "role"),
        Index("ix_memory_turns_conversation_order", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(32))  # the inbound message this turn belongs to
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    standalone: Mapped[str | None] = mapped_column(Text)  # user turns: the question as it was searched
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ConversationSummaryRow(Base):
    """Older turns folded into a summary; outlives the short-term TTL."""

    __tablename__ = "conversation_summaries"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    messages_folded: Mapped[int] = mapped_column(Integer, default=0)
    last_message_id: Mapped[str | None] = mapped_column(String(32))  # newest message folded in
    summarizer: Mapped[str] = mapped_column(String(32), default="extractive")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ContactProfileRow(Base):
    """What we know about a contact across conversations (besides stated facts)."""

    __tablename__ = "contact_profiles"

    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    preferred_language: Mapped[str | None] = mapped_column(String(8))
    channels: Mapped[list] = mapped_column(JSON, default=list)
    visits: Mapped[int] = mapped_column(Integer, default=0)  # returns after short-term memory had expired
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ContactFactRow(Base):
    """A durable fact the customer stated ("I live in Bishan"), one per kind."""

    __tablename__ = "contact_facts"
    __table_args__ = (UniqueConstraint("contact_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # property | area | units | brand | name
    value: Mapped[str] = mapped_column(String(200))
    source_message_id: Mapped[str] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), index=True
    )
    source_text: Mapped[str] = mapped_column(Text)  # the sentence the fact was read from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
