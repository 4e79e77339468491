"""Builds conversation memory from settings (called by the composition root).

Short-term memory follows the mode (``supportlah.backends.short_term_memory``); summaries,
profiles and facts are always in SQL.
"""
from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.settings import Settings
from config.sql import single_statement_sessions
from escalation.models import Ticket
from memory.context import ContextAssembler
from memory.conversation_memory import ConversationMemory, MemoryPolicy
from config.vocabulary import BusinessVocabulary
from memory.facts import FactExtractor, PatternFactExtractor
from memory.profile import ProfileStore, TicketHistory, TicketRecord
from memory.profile_sources import PdpaConsentLookup
from memory.rewrite import HeuristicRewriter, QueryRewriter
from memory.short_term import MemoryUnavailable
from memory.slots import SlotLexicon
from memory.summary import ExtractiveSummarizer, Summarizer, SummaryStore
from rag.tokens import TokenCounter
from supportlah.backends import context_budgets, short_term_memory


def build_memory(
    settings: Settings,
    sessions: async_sessionmaker,
    redis: Redis | None,
    *,
    counter: TokenCounter | None = None,
    rewriter: QueryRewriter | None = None,
    summarizer: Summarizer | None = None,
    facts: FactExtractor | None = None,
    tickets: TicketHistory | None = None,
    vocabulary: BusinessVocabulary | None = None,
) -> ConversationMemory:
    """``rewriter``/``summarizer``/``facts``: LLM-backed implementations when configured (the offline
    heuristics are always there as fallback); ``tickets``: defaults to the escalation tickets table."""
    counter = counter or TokenCounter()
    vocabulary = vocabulary or BusinessVocabulary()
    lexicon = SlotLexicon(vocabulary.slots)
    return ConversationMemory(
        short_term_memory(settings, sessions, redis),
        SummaryStore(sessions),
        ProfileStore(sessions, tickets=tickets or EscalationTicketHistory(sessions),
                     consent=PdpaConsentLookup(sessions)),
        ContextAssembler(counter, context_budgets(settings)),
        heuristic=HeuristicRewriter(lexicon, profile_slots=vocabulary.profile_slots),
        extractive=ExtractiveSummarizer(counter, max_tokens=min(settings.memory_summary_max_tokens,
                                                                 settings.memory_budget_summary)),
        facts=facts or PatternFactExtractor(lexicon, fact_types=vocabulary.facts, named_types=vocabulary.named_facts,
                                            count_words=vocabulary.count_words),
        rewriter=rewriter,
        summarizer=summarizer,
        policy=MemoryPolicy(
            fold_after=settings.memory_summary_after_messages,
            keep_recent=min(settings.memory_keep_recent_messages, settings.memory_summary_after_messages - 1),
            rewrite_followups=settings.memory_rewrite_followups,
            remember_facts=settings.memory_remember_facts,
        ),
    )


class EscalationTicketHistory:
    """memory's ``TicketHistory`` over escalation's ``tickets`` table: a contact's past hand-offs, why,
    and how they ended (composed here, so memory never imports escalation)."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT

    async def tickets_for_contact(self, contact_id: str, limit: int) -> list[TicketRecord]:
        try:
            async with self._reads() as session:
                rows = await session.scalars(
                    select(Ticket).where(Ticket.contact_id == contact_id)
                    .order_by(Ticket.created_at.desc()).limit(limit)
                )
                tickets = list(rows)
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"ticket read failed: {type(exc).__name__}") from exc
        return [
            TicketRecord(
                ticket_id=t.id, subject=f"#{t.number} {t.reason}", status=t.status,
                outcome=f"handled by {t.assignee_name}" if t.assignee_name else None,
                opened_at=t.created_at, closed_at=t.closed_at or t.resolved_at,
            )
            for t in tickets
        ]
