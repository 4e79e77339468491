"""Rolling summaries: once a conversation holds many turns, the older ones are folded
into a short summary kept in SQL, so the gist survives the short-term TTL and the
prompt stays small.

An LLM writes the best summaries (``Summarizer``, implemented by the LLM answerer);
offline, :class:`ExtractiveSummarizer` keeps what each exchange was about: the
customer's question (as searched, so follow-ups read on their own; facts they state
go to the profile instead) and the first sentence of our answer, newest lines kept
when the token budget is reached.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.types import Turn
from channels.messages import utcnow
from config.sql import single_statement_sessions
from memory.memory_tables import ConversationSummaryRow
from memory.short_term import ConversationKey, MemoryUnavailable
from rag.tokens import TokenCounter

HEADER = "Earlier in this conversation:"


class Summarizer(Protocol):
    name: str

    async def summarize(self, previous: str | None, turns: Sequence[Turn], language: str | None) -> str:
        """A summary covering ``previous`` (the summary so far, if any) and ``turns``, oldest first.

        Raise on failure; the caller falls back to the extractive summarizer.
        """


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")  # Chinese needs no space after


class ExtractiveSummarizer:
    name = "extractive"

    def __init__(self, counter: TokenCounter, *, max_tokens: int = 300, words_per_line: int = 20,
                 chars_per_line: int = 80) -> None:
        self._counter = counter
        self._max_tokens = max_tokens
        self._words = words_per_line
        self._chars = chars_per_line  # for unspaced scripts (Chinese)

    async def summarize(self, previous: str | None, turns: Sequence[Turn], language: str | None = None) -> str:
        lines = [line for line in (previous or "").splitlines() if line.startswith("- ")]
        lines += self._lines(turns)
        newest = lines[-1] if lines else ""
        while lines and self._counter.count("\n".join([HEADER, *lines])) > self._max_tokens:
            lines.pop(0)  # oldest first
        if not lines and newest:  # not even one whole line fits: the start of the newest one
            room = self._max_tokens - self._counter.count(HEADER + "\n") - 1
            cut = self._counter.decode(self._counter.encode(newest)[:max(room, 0)]) if room > 0 else ""
            while cut and self._counter.count(f"{HEADER}\n{cut}…") > self._max_tokens:
                cut = cut[:-1]
            lines = [f"{cut}…"] if cut else []
        return "\n".join([HEADER, *lines]) if lines else ""

    def _lines(self, turns: Sequence[Turn]) -> list[str]:
        lines: list[str] = []
        for turn in turns:
            gist = self._gist(turn.text, question=turn.role == "user")
            if not gist:
                continue
            if turn.role == "user":
                lines.append(f"- Customer asked: {gist}")
            elif lines and lines[-1].startswith("- Customer asked:") and " | " not in lines[-1]:
                who = "Staff" if turn.role == "staff" else "We"
                lines[-1] += f" | {who} said: {gist}"
            else:
                lines.append(f"- {'Staff' if turn.role == 'staff' else 'We'} said: {gist}")
        return lines

    def _gist(self, text: str, *, question: bool) -> str:
        """The first sentence; for the customer, the first question if there is one."""
        sentences = _SENTENCE_END.split(" ".join(text.split()))
        asked = [s for s in sentences if s.endswith(("?", "？"))] if question else []
        first = (asked or sentences)[0]
        words = first.split(" ")
        if len(words) > self._words:
            first = " ".join(words[: self._words]) + " …"
        if len(first) > self._chars and " " not in first:
            first = first[: self._chars] + "…"
        return first


@dataclass(frozen=True)
class Summary:
    conversation_id: str
    text: str
    messages_folded: int
    last_message_id: str | None
    summarizer: str
    updated_at: datetime


class SummaryStore:
    """One summary row per conversation."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT

    async def get(self, conversation_id: str) -> Summary | None:
        try:
            async with self._reads() as session:
                row = await session.get(ConversationSummaryRow, conversation_id)
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"summary read failed: {type(exc).__name__}") from exc
        if row is None:
            return None
        return Summary(row.conversation_id, row.text, row.messages_folded, row.last_message_id, row.summarizer,
                       row.updated_at)

    async def save(self, key: ConversationKey, text: str, *, folded: int, last_message_id: str | None,
                   summarizer: str) -> None:
        """Replace the summary; ``folded`` is how many more messages it now covers."""
        try:
            async with self._sessions() as session:
                row = await session.get(ConversationSummaryRow, key.conversation_id)
                now = utcnow()
                if row is None:
                    row = ConversationSummaryRow(conversation_id=key.conversation_id, contact_id=key.contact_id,
                                                 text=text, messages_folded=0, created_at=now)
                    session.add(row)
                row.text = text
                row.messages_folded += folded
                row.last_message_id = last_message_id
                row.summarizer = summarizer
                row.updated_at = now
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"summary write failed: {type(exc).__name__}") from exc

    async def clear(self, conversation_id: str) -> int:
        return await self._delete(ConversationSummaryRow.conversation_id == conversation_id)

    async def forget_contact(self, contact_id: str) -> int:
        return await self._delete(ConversationSummaryRow.contact_id == contact_id)

    async def purge_before(self, cutoff: datetime) -> int:
        return await self._delete(ConversationSummaryRow.updated_at < cutoff)

    async def export_contact(self, contact_id: str) -> list[dict]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ConversationSummaryRow).where(ConversationSummaryRow.contact_id == contact_id)
            )
            return [{"conversation_id": r.conversation_id, "text": r.text, "messages_folded": r.messages_folded,
                     "updated_at": r.updated_at.isoformat()} for r in rows]

    async def _delete(self, condition) -> int:  # noqa: ANN001
        try:
            async with self._sessions() as session:
                result = await session.execute(delete(ConversationSummaryRow).where(condition))
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"summary delete failed: {type(exc).__name__}") from exc
        return int(result.rowcount or 0)
