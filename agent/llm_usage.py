"""Token usage and cost of every LLM call, per conversation (table ``llm_usage``).

One row per call, failed calls included (a timed-out request may still be billed),
so the cost of a conversation is a sum. Rows hold counts and ids only, no text: the
conversation id is a random key, not personal data, so rows outlive an erasure
and keep the monthly bill explainable. Recording never blocks a reply: a failure
to write is logged and the customer still gets their answer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Boolean, Float, Index, Integer, String, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime

logger = logging.getLogger(__name__)


class LLMUsage(Base):
    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_conversation_created", "conversation_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))  # answer | rewrite | summary
    model: Mapped[str] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # counted by us, not reported by the server
    cost_usd: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(32))  # ok | timeout | unavailable | rejected | bad_output
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


@dataclass(frozen=True)
class CostRates:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1_000_000


@dataclass(frozen=True)
class UsageEntry:
    conversation_id: str
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    outcome: str = "ok"
    estimated: bool = False
    latency_ms: int = 0
    contact_id: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class UsageTotals:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class UsageRecorder(Protocol):
    async def record(self, entry: UsageEntry) -> None: ...


class UsageStore:
    def __init__(self, sessions: async_sessionmaker, rates: CostRates) -> None:
        self._sessions = sessions
        self.rates = rates

    async def record(self, entry: UsageEntry) -> None:
        row = LLMUsage(
            conversation_id=entry.conversation_id, contact_id=entry.contact_id, channel=entry.channel,
            purpose=entry.purpose, model=entry.model, prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens, estimated=entry.estimated,
            cost_usd=self.rates.cost(entry.prompt_tokens, entry.completion_tokens), outcome=entry.outcome,
            latency_ms=entry.latency_ms,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except SQLAlchemyError:
            logger.exception("could not record LLM usage", extra={"conversation_id": entry.conversation_id})

    async def totals(self, conversation_id: str) -> UsageTotals:
        query = select(func.count(LLMUsage.id), func.coalesce(func.sum(LLMUsage.prompt_tokens), 0),
                       func.coalesce(func.sum(LLMUsage.completion_tokens), 0),
                       func.coalesce(func.sum(LLMUsage.cost_usd), 0.0)).where(
            LLMUsage.conversation_id == conversation_id)
        async with self._sessions() as session:
            calls, prompt, completion, cost = (await session.execute(query)).one()
        return UsageTotals(int(calls), int(prompt), int(completion), float(cost))

    async def rows(self, conversation_id: str) -> list[LLMUsage]:
        async with self._sessions() as session:
            result = await session.execute(select(LLMUsage).where(LLMUsage.conversation_id == conversation_id)
                                           .order_by(LLMUsage.created_at))
            return list(result.scalars())
