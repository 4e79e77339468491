"""Ticket tables: a ticket per hand-off, its event history, and where it lives in the staff group.

A ticket belongs to one customer conversation. While it is *active* (open, claimed,
waiting for the customer) the conversation is in human mode: the AI stays quiet and
the customer's messages go to staff. ``staff_topics`` maps a conversation to its
forum topic (one per conversation, reused by later tickets); ``staff_posts`` maps
every message we posted in the staff group to its ticket, which is how a staff reply
finds its customer when the group has no topics.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum, nonmember

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime


class TicketStatus(StrEnum):
    OPEN = "open"  # waiting for a staff member
    CLAIMED = "claimed"  # a staff member owns it and owes the customer an answer
    WAITING_CUSTOMER = "waiting_customer"  # staff answered; the ball is with the customer
    RESOLVED = "resolved"  # handed back to the bot; may be reopened
    CLOSED = "closed"  # finished for good (a new escalation opens a new ticket)

    ACTIVE = nonmember((OPEN, CLAIMED, WAITING_CUSTOMER))  # human mode: the AI does not answer
    WAITING_FOR_STAFF = nonmember((OPEN, CLAIMED))  # the SLA clock runs


class TicketCounter(Base):
    """The last ticket number handed out. Numbers come from one row incremented in the opening
    transaction: concurrent hand-offs queue on its row lock instead of racing for MAX(number) + 1,
    and a rolled-back opening gives its number back."""

    __tablename__ = "ticket_counter"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # "ticket"
    value: Mapped[int] = mapped_column(Integer)


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_sla", "status", "sla_due_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # what staff say: "#123"
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(128))  # recipient id on that channel
    customer_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.OPEN)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL)
    reason: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str | None] = mapped_column(String(32))  # Telegram user id of the staff member
    assignee_name: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    draft_text: Mapped[str] = mapped_column(Text, default="")  # the AI's suggested answer, for staff
    draft_sources: Mapped[list] = mapped_column(JSON, default=list)
    card_facts: Mapped[dict] = mapped_column(JSON, default=dict)  # what the card showed, to redraw it on changes
    opened_by_message_id: Mapped[str | None] = mapped_column(String(32), unique=True)  # retries find it again
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the hand-off card in the staff group
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketEvent(Base):
    """One thing that happened to a ticket. ``key`` makes recording it idempotent across job retries."""

    __tablename__ = "ticket_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))  # customer | bot | system | staff:<telegram user id>
    actor_name: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffTopic(Base):
    """The staff group's forum topic for one customer conversation (``thread_id`` None: no topic, reply-threading)."""

    __tablename__ = "staff_topics"
    __table_args__ = (Index("ix_staff_topics_thread", "chat_id", "thread_id"),)

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(128))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffPost(Base):
    """A message we posted in the staff group about a ticket: a staff reply to it reaches that customer."""

    __tablename__ = "staff_posts"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
