"""Admin tables: API keys, the audit log and the anonymized analytics that outlive retention."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime


class ApiKey(Base):
    """An admin API key. Only the sha256 of the token is stored; ``prefix`` identifies it to people."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(400))  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what to which object, for every admin and staff action that changes something."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))  # key:<prefix> | cli | staff:<id> | system
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    remote: Mapped[str | None] = mapped_column(String(64))  # client address of an API call


class DailyAggregate(Base):
    """Anonymized per-day counts that survive the retention purge (one row per day × channel × language)."""

    __tablename__ = "analytics_daily"
    __table_args__ = (UniqueConstraint("day", "channel", "language"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD (UTC)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    inbound: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)  # answered by the bot, no person needed
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    response_histogram: Mapped[dict] = mapped_column(JSON, default=dict)  # bucket index -> count (first part sent)


class EscalationAggregate(Base):
    """Anonymized escalations per day × channel × reason."""

    __tablename__ = "analytics_escalations"
    __table_args__ = (UniqueConstraint("day", "channel", "reason"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    day: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
