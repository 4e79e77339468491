"""Short-term memory: the recent turns of one conversation, forgotten after a quiet spell.

Two backends behind one interface: a Redis list per conversation (production) and rows
in the SQL database (embedded mode, so memory survives ``supportlah ask`` invocations
and restarts). Expiry slides: the turns expire ``ttl`` after the last one was added.

Appends are idempotent per message: a retried job that records the same message again
changes nothing, so memory never holds a question twice.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import utcnow
from config.sql import dialect_insert
from memory.memory_tables import MemoryTurnRow

log = logging.getLogger(__name__)


class MemoryUnavailable(Exception):
    """The memory backend (Redis or SQL) failed; callers carry on without memory."""


@dataclass(frozen=True)
class ConversationKey:
    contact_id: str
    conversation_id: str


@dataclass(frozen=True)
class MemoryTurn:
    role: str  # user | assistant | staff
    text: str
    message_id: str  # the inbound message this turn belongs to
    standalone: str | None = None  # user turns: the question as searched (after follow-up rewriting)
    at: datetime = field(default_factory=utcnow)

    def to_json(self) -> str:
        return json.dumps({"role": self.role, "text": self.text, "message_id": self.message_id,
                           "standalone": self.standalone, "at": self.at.isoformat()}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> MemoryTurn:
        data = json.loads(raw)
        return cls(role=data["role"], text=data["text"], message_id=data["message_id"],
                   standalone=data.get("standalone"), at=datetime.fromisoformat(data["at"]))


class ShortTermMemory(Protocol):
    async def append(self, key: ConversationKey, message_id: str, turns: Sequence[MemoryTurn]) -> int:
        """Add the turns of one message (once per ``message_id``); returns how many turns are held."""

    async def recent(self, key: ConversationKey, limit: int | None = None) -> list[MemoryTurn]:
        """Unexpired turns, oldest first; the last ``limit`` when given."""

    async def drop_oldest(self, key: ConversationKey, count: int) -> None:
        """Forget the ``count`` oldest turns (they were folded into the summary)."""

    async def clear(self, key: ConversationKey) -> None: ...

    async def forget_contact(self, contact_id: str) -> int:
        """Every turn of every conversation of the contact; returns how many were removed."""

    async def export_contact(self, contact_id: str) -> list[dict]: ...


# ---------------------------------------------------------------------- Redis
# KEYS: turns list, seen-messages set. ARGV: ttl ms, max turns, message id, turns as JSON…
_APPEND = """
local added = redis.call('SADD', KEYS[2], ARGV[3])
if added == 1 then
  for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return redis.call('LLEN', KEYS[1])
"""


class RedisShortTermMemory:
    """A list per conversation under ``<prefix>:memory:<contact>:<conversation>``.

    The contact id in the key lets erasure find every list of a customer with one SCAN,
    even after their SQL rows are gone.
    """

    def __init__(self, redis: Redis, prefix: str, *, ttl_seconds: float, max_turns: int = 200) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._max_turns = max_turns
        self._append = redis.register_script(_APPEND)

    def _base(self, key: ConversationKey) -> str:
        return f"{self._prefix}:memory:{key.contact_id}:{key.conversation_id}"

    async def append(self, key: ConversationKey, message_id: str, turns: Sequence[MemoryTurn]) -> int:
        base = self._base(key)
        try:
            return int(await self._append(keys=[f"{base}:turns", f"{base}:seen"],
                                          args=[self._ttl_ms, self._max_turns, message_id,
                                                *[turn.to_json() for turn in turns]]))
        except RedisError as exc:
            raise MemoryUnavailable(f"redis append failed: {exc}") from exc

    async def recent(self, key: ConversationKey, limit: int | None = None) -> list[MemoryTurn]:
        start = -limit if limit else 0
        try:
            raw = await self._redis.lrange(f"{self._base(key)}:turns", start, -1)
        except RedisError as exc:
            raise MemoryUnavailable(f"redis read failed: {exc}") from exc
        return [MemoryTurn.from_json(item) for item in raw]

    async def drop_oldest(self, key: ConversationKey, count: int) -> None:
        if count <= 0:
            return
        try:
            await self._redis.ltrim(f"{self._base(key)}:turns", count, -1)
        except RedisError as exc:
            raise MemoryUnavailable(f"redis trim failed: {exc}") from exc

    async def clear(self, key: ConversationKey) -> None:
        base = self._base(key)
        try:
            await self._redis.delete(f"{base}:turns", f"{base}:seen")
        except RedisError as exc:
            raise MemoryUnavailable(f"redis delete failed: {exc}") from exc

    async def _contact_keys(self, contact_id: str) -> list[bytes]:
        pattern = f"{self._prefix}:memory:{contact_id}:*"
        return [key async for key in self._redis.scan_iter(match=pattern, count=500)]

    async def forget_contact(self, contact_id: str) -> int:
        try:
            keys = await self._contact_keys(contact_id)
            lists = [key for key in keys if key.endswith(b":turns")]
            removed = sum([await self._redis.llen(key) for key in lists])
            if keys:
                await self._redis.delete(*keys)
        except RedisError as exc:
            raise MemoryUnavailable(f"redis erasure failed: {exc}") from exc
        return removed

    async def export_contact(self, contact_id: str) -> list[dict]:
        try:
            keys = [key for key in await self._contact_keys(contact_id) if key.endswith(b":turns")]
            exported = []
            for key in keys:
                conversation_id = key.decode().split(":")[-2]
                for raw in await self._redis.lrange(key, 0, -1):
                    exported.append(_export(conversation_id, MemoryTurn.from_json(raw)))
        except RedisError as exc:
            raise MemoryUnavailable(f"redis export failed: {exc}") from exc
        return exported


# ---------------------------------------------------------------------- SQL
class SqlShortTermMemory:
    """The same memory as rows of ``memory_turns`` (embedded mode: SQLite next to everything else)."""

    def __init__(self, sessions: async_sessionmaker, *, ttl_seconds: float, max_turns: int = 200,
                 purge_every_seconds: float = 300.0) -> None:
        self._sessions = sessions
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_turns = max_turns
        self._purge_every = timedelta(seconds=purge_every_seconds)
        self._last_purge = utcnow() - self._purge_every

    async def append(self, key: ConversationKey, message_id: str, turns: Sequence[MemoryTurn]) -> int:
        try:
            async with self._sessions() as session:
                await self._expire(session, key.conversation_id)
                insert = dialect_insert(session)
                now = utcnow()
                for turn in turns:
                    await session.execute(
                        insert(MemoryTurnRow)
                        .values(contact_id=key.contact_id, conversation_id=key.conversation_id,
                                message_id=message_id, role=turn.role, text=turn.text,
                                standalone=turn.standalone, created_at=now)
                        .on_conflict_do_nothing(index_elements=["conversation_id", "message_id", "role"])
                    )
                held = await self._count(session, key.conversation_id)
                if held > self._max_turns:
                    await self._drop(session, key.conversation_id, held - self._max_turns)
                    held = self._max_turns
                await session.commit()
            await self._purge_expired()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"sql append failed: {type(exc).__name__}") from exc
        return held

    async def recent(self, key: ConversationKey, limit: int | None = None) -> list[MemoryTurn]:
        try:
            async with self._sessions() as session:
                if await self._expire(session, key.conversation_id):
                    await session.commit()
                    return []
                query = (select(MemoryTurnRow).where(MemoryTurnRow.conversation_id == key.conversation_id)
                         .order_by(MemoryTurnRow.id.desc()))
                if limit:
                    query = query.limit(limit)
                rows = list(await session.scalars(query))
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"sql read failed: {type(exc).__name__}") from exc
        return [_turn(row) for row in reversed(rows)]

    async def drop_oldest(self, key: ConversationKey, count: int) -> None:
        if count <= 0:
            return
        try:
            async with self._sessions() as session:
                await self._drop(session, key.conversation_id, count)
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"sql trim failed: {type(exc).__name__}") from exc

    async def clear(self, key: ConversationKey) -> None:
        await self._delete(MemoryTurnRow.conversation_id == key.conversation_id)

    async def forget_contact(self, contact_id: str) -> int:
        return await self._delete(MemoryTurnRow.contact_id == contact_id)

    async def export_contact(self, contact_id: str) -> list[dict]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MemoryTurnRow).where(MemoryTurnRow.contact_id == contact_id).order_by(MemoryTurnRow.id)
            )
            return [_export(row.conversation_id, _turn(row)) for row in rows]

    async def _delete(self, condition) -> int:  # noqa: ANN001
        try:
            async with self._sessions() as session:
                result = await session.execute(delete(MemoryTurnRow).where(condition))
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"sql delete failed: {type(exc).__name__}") from exc
        return int(result.rowcount or 0)

    async def _expire(self, session: AsyncSession, conversation_id: str) -> bool:
        """Delete the conversation's turns if the newest is older than the TTL; True if it did."""
        newest = await session.scalar(
            select(func.max(MemoryTurnRow.created_at)).where(MemoryTurnRow.conversation_id == conversation_id)
        )
        if newest is None or _aware(newest) >= utcnow() - self._ttl:
            return False
        await session.execute(delete(MemoryTurnRow).where(MemoryTurnRow.conversation_id == conversation_id))
        return True

    async def _count(self, session: AsyncSession, conversation_id: str) -> int:
        return int(await session.scalar(
            select(func.count()).select_from(MemoryTurnRow).where(MemoryTurnRow.conversation_id == conversation_id)
        ) or 0)

    async def _drop(self, session: AsyncSession, conversation_id: str, count: int) -> None:
        oldest = select(MemoryTurnRow.id).where(MemoryTurnRow.conversation_id == conversation_id) \
            .order_by(MemoryTurnRow.id).limit(count)
        await session.execute(delete(MemoryTurnRow).where(MemoryTurnRow.id.in_(oldest.scalar_subquery())))

    async def _purge_expired(self) -> None:
        """Now and then, drop conversations nobody came back to (Redis expires its keys by itself)."""
        now = utcnow()
        if now - self._last_purge < self._purge_every:
            return
        self._last_purge = now
        async with self._sessions() as session:
            stale = (select(MemoryTurnRow.conversation_id).group_by(MemoryTurnRow.conversation_id)
                     .having(func.max(MemoryTurnRow.created_at) < now - self._ttl))
            result = await session.execute(
                delete(MemoryTurnRow).where(MemoryTurnRow.conversation_id.in_(stale.scalar_subquery()))
            )
            await session.commit()
        if result.rowcount:
            log.debug("expired short-term memory purged", extra={"turns": result.rowcount})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def _turn(row: MemoryTurnRow) -> MemoryTurn:
    return MemoryTurn(role=row.role, text=row.text, message_id=row.message_id, standalone=row.standalone,
                      at=row.created_at)


def _export(conversation_id: str, turn: MemoryTurn) -> dict:
    return {"conversation_id": conversation_id, "role": turn.role, "text": turn.text,
            "at": turn.at.isoformat()}
