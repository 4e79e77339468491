"""Builds conversation memory from settings (called by the composition root).

Short-term memory follows the mode (``supportlah.backends.short_term_memory``); summaries,
profiles and facts are always in SQL.
"""
from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.settings import Settings
from memory.context import ContextAssembler
from memory.conversation_memory import ConversationMemory, MemoryPolicy
from config.vocabulary import BusinessVocabulary
from memory.facts import FactExtractor, PatternFactExtractor
from memory.profile import ProfileStore, TicketHistory
from memory.profile_sources import EscalationTicketHistory, PdpaConsentLookup
from memory.rewrite import HeuristicRewriter, QueryRewriter
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
