"""Console tables: accounts (owner or staff), their sign-in sessions, and the websites crawled.

Passwords are stored as scrypt hashes; sessions and one-time set-password links as the
sha256 of their token, so a copy of the database signs nobody in.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import utcnow
from config.sql import Base, UTCDateTime


class Role(StrEnum):
    OWNER = "owner"  # everything: inbox, knowledge, analytics, setup
    STAFF = "staff"  # the inbox only


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # short: "console:<id>" fits ticket assignee ids
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None until the set-password link is used
    set_password_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    set_password_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Website(Base):
    """A site the owner added to the knowledge base; re-crawled every ``every_hours``."""

    __tablename__ = "websites"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_url: Mapped[str] = mapped_column(String(2000), unique=True)
    every_hours: Mapped[int] = mapped_column(Integer, default=24)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_report: Mapped[dict] = mapped_column(JSON, default=dict)  # pages, added, updated, unchanged, removed …
