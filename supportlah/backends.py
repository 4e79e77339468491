"""Which backend serves each seam, decided once from settings (called by the composition root).

* index: a Qdrant server when ``SUPPORTLAH_QDRANT_URL`` is set, else the embedded qdrant-edge shard;
* reranker: Cohere when ``SUPPORTLAH_COHERE_API_KEY`` is set (local order on any failure),
  else the local blend;
* answerer: an OpenAI-compatible model when ``SUPPORTLAH_LLM_BASE_URL`` or
  ``SUPPORTLAH_LLM_API_KEY`` is set (the extractive agent on any failure), else extractive;
* the mode's set (:func:`build_mode_backends`): queue, conversation locks, send guard, web-chat bus,
  short-term memory and the contact rate limiter — all in process (embedded) or all on Redis
  (production, ``Settings.is_production_queue``). Nothing else asks which mode it is in.

Every embedded choice made for lack of configuration is logged once and counted in
the shared :class:`FallbackCounter` (so is every per-request fallback later).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from agent.glossary import Glossary
from agent.intents import IntentDetector
from agent.language import detect_language
from agent.llm_fallbacks import FallbackCounter
from agent.llm_usage import CostRates, UsageStore
from agent.prompting import BusinessProfile, PromptBuilder
from agent.safety import PIIMasker
from agent.tools import TicketLookup, TicketLookupError, TicketView, ToolBox
from config.settings import Settings
from config.hours import BusinessHours
from escalation.tickets import TicketRepository
from memory.context import ContextAssembler, ContextBudgets
from rag.edge_index import EdgeIndex
from rag.index import VectorIndex
from rag.rerank import LocalReranker, Reranker
from rag.tokens import TokenCounter
from channels.web.hub import EventBus, LocalBus, RedisBus
from memory.short_term import RedisShortTermMemory, ShortTermMemory, SqlShortTermMemory
from supportlah.admin.limits import FloodLimiter, LocalFloodLimiter, RedisFloodLimiter
from workers.local import InProcessQueue, LocalConversationLocks, LocalSendGuard
from workers.queue import ConversationLocks, Queue, SendGuard

if TYPE_CHECKING:
    from agent.agent import Retriever, SupportAgent
    from agent.llm_client import OpenAIChatModel
    from workers.processor import Agent

log = logging.getLogger(__name__)

# Prompt tokens kept outside the memory budgets: our instructions, tool and answer schemas,
# and tool results (a second search, hours, a ticket).
RESERVED_PROMPT_TOKENS = 2300
MIN_QUESTION_TOKENS = 100


class Mode(StrEnum):
    EMBEDDED = "embedded"  # one process, no Redis: everything in process
    PRODUCTION = "production"  # Redis: arq queue, shared locks and guards, pub/sub, Redis short-term memory


def mode_of(settings: Settings) -> Mode:
    return Mode.PRODUCTION if settings.is_production_queue else Mode.EMBEDDED


@dataclass
class ModeBackends:
    """The backends that change together with the mode, built once (:func:`build_mode_backends`)."""

    mode: Mode
    redis: Redis | None
    bus: EventBus
    locks: ConversationLocks
    guard: SendGuard
    limiter: FloodLimiter

    def short_term(self, settings: Settings, sessions: async_sessionmaker) -> ShortTermMemory:
        return short_term_memory(settings, sessions, self.redis)

    async def queue(self, settings: Settings, process: Callable[[str], Awaitable[None]], *,
                    start: bool) -> Queue:
        """Production: arq (``supportlah worker`` works); embedded: in-process workers over ``process``,
        started when ``start`` (a one-shot command or a worker process leaves them stopped)."""
        if self.mode is Mode.PRODUCTION:
            from workers.arq_queue import ArqQueue  # arq is imported only in production

            return await ArqQueue.connect(settings)
        queue = InProcessQueue(process, concurrency=settings.max_jobs)
        if start:
            queue.start()
        return queue


def build_mode_backends(settings: Settings, stack: AsyncExitStack) -> ModeBackends:
    """The embedded or the production set; ``stack`` closes the Redis client."""
    if mode_of(settings) is Mode.EMBEDDED:
        return ModeBackends(Mode.EMBEDDED, None, LocalBus(), LocalConversationLocks(), LocalSendGuard(),
                            LocalFloodLimiter())
    from workers.redis_coordination import RedisConversationLocks, RedisSendGuard

    redis = Redis.from_url(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    prefix = settings.redis_prefix
    return ModeBackends(
        Mode.PRODUCTION, redis, RedisBus(redis, f"{prefix}:web-events"),
        RedisConversationLocks(redis, prefix, ttl_seconds=settings.conversation_lock_seconds),
        RedisSendGuard(redis, prefix, ttl_seconds=settings.send_guard_seconds),
        RedisFloodLimiter(redis, prefix))


def short_term_memory(settings: Settings, sessions: async_sessionmaker, redis: Redis | None) -> ShortTermMemory:
    """Recent turns: in Redis with a TTL when there is one (production), in SQL otherwise."""
    if redis is not None:
        return RedisShortTermMemory(redis, settings.redis_prefix, ttl_seconds=settings.memory_ttl_seconds)
    return SqlShortTermMemory(sessions, ttl_seconds=settings.memory_ttl_seconds)


def context_budgets(settings: Settings) -> ContextBudgets:
    return ContextBudgets(
        instructions=settings.memory_budget_instructions,
        profile=settings.memory_budget_profile,
        summary=settings.memory_budget_summary,
        turns=settings.memory_budget_turns,
        chunks=settings.memory_budget_chunks,
        question=settings.memory_budget_question,
    )


def build_index(settings: Settings, *, fallbacks: FallbackCounter | None = None) -> VectorIndex:
    if settings.qdrant_url:  # vendor SDKs are imported only when configured: the CLI starts faster
        from qdrant_client import AsyncQdrantClient

        from rag.qdrant_server import QdrantServerIndex

        client = AsyncQdrantClient(
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
            timeout=max(1, round(settings.qdrant_timeout_seconds)),
            check_compatibility=False,  # its check is a blocking request at construction, inside the event loop
        )
        log.info("vector index: qdrant server", extra={"collection": settings.qdrant_collection})
        return QdrantServerIndex(client, settings.qdrant_collection)
    log.info("no SUPPORTLAH_QDRANT_URL: the embedded index serves retrieval")
    _note(fallbacks, "index", "not_configured")
    return EdgeIndex(Path(settings.data_dir) / "index")


def build_reranker(settings: Settings, *, closers: list, masker: PIIMasker | None = None,
                   fallbacks: FallbackCounter | None = None) -> Reranker:
    """``closers``: gets the HTTP client's close when Cohere is used."""
    local = LocalReranker()
    if settings.cohere_api_key is None or not settings.cohere_api_key.get_secret_value():
        log.info("no SUPPORTLAH_COHERE_API_KEY: the local reranker orders candidates")
        _note(fallbacks, "reranker", "not_configured")
        return local
    import cohere
    import httpx

    from rag.cohere_rerank import CohereReranker

    http = httpx.AsyncClient(timeout=settings.rerank_timeout_seconds)
    closers.append(http.aclose)
    options = {"base_url": settings.cohere_base_url} if settings.cohere_base_url else {}
    client = cohere.AsyncClientV2(api_key=settings.cohere_api_key.get_secret_value(), httpx_client=http,
                                  max_retries=0, timeout=settings.rerank_timeout_seconds, **options)
    log.info("reranker: cohere", extra={"model": settings.rerank_model})
    return CohereReranker(client, settings.rerank_model, mask=(masker or PIIMasker()).mask, fallback=local,
                          timeout=settings.rerank_timeout_seconds,
                          max_tokens_per_doc=settings.rerank_max_tokens_per_doc, fallbacks=fallbacks)


def build_chat_model(settings: Settings, counter: TokenCounter) -> OpenAIChatModel | None:
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    if not settings.llm_base_url and not key:
        return None
    from openai import AsyncOpenAI

    from agent.llm_client import OpenAIChatModel

    # Servers without keys (Ollama, vLLM) ignore the header; the SDK insists on one.
    client = AsyncOpenAI(base_url=settings.llm_base_url or None, api_key=key or "unused", max_retries=0,
                         timeout=settings.llm_timeout_seconds)
    return OpenAIChatModel(client, settings.llm_model, timeout=settings.llm_timeout_seconds,
                           max_output_tokens=settings.llm_max_output_tokens, temperature=settings.llm_temperature,
                           counter=counter)


def prompt_budgets(settings: Settings) -> ContextBudgets:
    """The memory's section budgets, shrunk proportionally when the model's context is smaller."""
    base = context_budgets(settings)
    available = settings.llm_context_tokens - settings.llm_max_output_tokens - RESERVED_PROMPT_TOKENS
    sections = base.profile + base.summary + base.turns + base.chunks + base.question
    if available <= 0:
        raise ValueError(f"SUPPORTLAH_LLM_CONTEXT_TOKENS ({settings.llm_context_tokens}) leaves no room for a "
                         f"prompt after {settings.llm_max_output_tokens} output tokens")
    if sections <= available:
        return base
    scale = available / sections
    return replace(base, profile=int(base.profile * scale), summary=int(base.summary * scale),
                   turns=int(base.turns * scale), chunks=int(base.chunks * scale),
                   question=max(MIN_QUESTION_TOKENS, int(base.question * scale)))


def build_agent(
    settings: Settings,
    retriever: Retriever,
    extractive_agent: SupportAgent,
    *,
    closers: list,
    sessions: async_sessionmaker | None = None,
    fallbacks: FallbackCounter | None = None,
    tickets: TicketLookup | None = None,
    intents: IntentDetector | None = None,
    detect=detect_language,  # noqa: ANN001 - the container's LanguageDetector instance
    reranker_name: str = "local",
    counter: TokenCounter | None = None,
    glossary: Glossary | None = None,
) -> Agent:
    """The LLM agent (falling back to ``extractive_agent``) when a model is configured, else the extractive one.

    ``sessions``: where token usage is recorded (table ``llm_usage``); ``tickets``: lets the model answer
    "what's the status of my ticket?" (:class:`EscalationTicketLookup`)."""
    counter = counter or TokenCounter()
    model = build_chat_model(settings, counter)
    if model is None:
        log.info("no SUPPORTLAH_LLM_BASE_URL / SUPPORTLAH_LLM_API_KEY: the extractive agent answers")
        _note(fallbacks, "answerer", "not_configured")
        return extractive_agent
    from agent.llm import LLMAgent, LLMAgentConfig

    closers.append(model.close)
    prompts = PromptBuilder(ContextAssembler(counter, prompt_budgets(settings)),
                            context_tokens=settings.llm_context_tokens,
                            max_output_tokens=settings.llm_max_output_tokens)
    hours = BusinessHours.parse(settings.business_hours, holidays=settings.public_holidays,
                                time_zone=settings.business_timezone)
    profile = BusinessProfile(name=settings.business_name, description=settings.business_description,
                              tone=settings.business_tone, languages=tuple(settings.business_languages),
                              hours=settings.business_hours, timezone=settings.business_timezone)
    usage = None
    if sessions is not None:
        usage = UsageStore(sessions, CostRates(settings.llm_input_cost_per_mtok, settings.llm_output_cost_per_mtok))
    log.info("answerer: llm", extra={"model": settings.llm_model})
    return LLMAgent(
        model, retriever, extractive_agent, prompts, profile,
        tools=ToolBox(retriever, top_k=settings.retrieval_top_k, hours=hours, hours_spec=settings.business_hours,
                      tickets=tickets, glossary=glossary),
        config=LLMAgentConfig(top_k=settings.retrieval_top_k, confidence_threshold=settings.llm_confidence_threshold,
                              max_tool_rounds=settings.llm_max_tool_rounds,
                              structured_output=settings.llm_structured_output, use_tools=settings.llm_tools),
        usage=usage, fallbacks=fallbacks, detect=detect, intents=intents, reranker_name=reranker_name,
        glossary=glossary,
    )


class EscalationTicketLookup:
    """``TicketLookup`` over the escalation tickets: a customer sees only their own tickets."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._tickets = TicketRepository(sessions)

    async def ticket_status(self, conversation_id: str, contact_id: str, number: int | None) -> TicketView | None:
        try:
            if number is not None:
                ticket = await self._tickets.by_number(number)
                if ticket is None or ticket.contact_id != contact_id:
                    return None
            else:
                ticket = await self._tickets.latest_for(conversation_id)
        except SQLAlchemyError as exc:
            raise TicketLookupError(f"tickets unreadable: {type(exc).__name__}") from exc
        if ticket is None:
            return None
        return TicketView(ticket.number, ticket.status, ticket.created_at, ticket.updated_at)


def _note(fallbacks: FallbackCounter | None, component: str, reason: str) -> None:
    if fallbacks is not None:
        fallbacks.record(component, reason)
