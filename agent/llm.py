"""The support agent on an LLM: retrieve, let the model write a cited answer, check it, or hand off.

Same contract as the extractive ``SupportAgent`` (``answer(request, on_delta)``), and
that agent is the fallback: when the model times out, errors or returns something
unusable twice, the extractive answer goes out instead, so a customer is never
left without a reply. Decisions, cheapest and safest first:

1. empty message, thanks, greeting, "let me talk to a person": canned texts, no model;
2. retrieve (the memory's standalone ``search_query`` when set) → top chunks, reranked;
3. the model answers from numbered sources in structured JSON, possibly after tool
   calls (search again, hours, escalate, ticket status);
4. citations to sources it was not given are dropped; no valid citation, a
   ``needs_human`` flag, low confidence, or an answer the output guard rejects
   (numbers, links, promises not in the cited text; leaked or obeyed instructions)
   → the hand-off text in the customer's language, and staff are brought in.

Personal data is masked in everything sent to the model and restored in what the
customer reads (:mod:`agent.safety`). Web chat sees the answer as it streams
(:mod:`agent.llm_stream`); the returned ``Reply`` is authoritative.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.agent import OTHER_LANGUAGES, Retriever, SearchPrefetch, stream_pieces
from agent.errors import AgentUnavailableError
from agent.glossary import Glossary
from agent.intents import IntentDetector, IntentReason, SmallTalk
from agent.language import detect_language
from agent.llm_client import ChatModel, ChatResult, LLMError, LLMErrorKind, parse_json_object
from agent.llm_guard import Evidence, OutputGuard
from agent.llm_stream import DeltaRelay, StreamState
from agent.llm_usage import UsageEntry, UsageRecorder
from agent.prompting import (BusinessProfile, PromptBuilder, PromptTooLarge, SourceBook, SourceEntry, instructions,
                             response_format, schema_tokens)
from agent.safety import InjectionDetector, MaskSession, PIIMasker
from agent.texts import TextCatalog, text
from agent.tools import ToolBox, ToolContext
from config.types import AgentRequest, Reply, Source
from rag.embedding import EmbeddingError
from rag.index import VectorIndexError
from rag.types import RetrievedChunk

logger = logging.getLogger(__name__)

DeltaCallback = Callable[[str], Awaitable[None]]
STAFF_SOURCES = 3
MIN_TOOL_ROOM = 64  # tokens; with less left, the model must answer with what it has
_MARKERS = re.compile(r"\s?[\[【](?:sources?\s*)?\d{1,3}(?:\s*[,，]\s*\d{1,3})*[\]】]", re.IGNORECASE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TAMIL = re.compile(r"[\u0b80-\u0bff]")


class Agent(Protocol):
    async def answer(self, request: AgentRequest, on_delta: DeltaCallback | None = None) -> Reply: ...


class FallbackRecorder(Protocol):
    def record(self, component: str, reason: str) -> None: ...


class Reason:
    CUSTOMER_REQUEST = IntentReason.CUSTOMER_REQUEST.value
    SENSITIVE_TOPIC = IntentReason.SENSITIVE_TOPIC.value
    LOW_CONFIDENCE = "low_confidence"
    EMPTY_MESSAGE = "empty_message"
    UNGROUNDED = "ungrounded_answer"  # no valid citation: not sent as fact
    UNSAFE = "unsafe_answer"  # the output guard stopped it


@dataclass(frozen=True)
class LLMAgentConfig:
    top_k: int = 5
    confidence_threshold: float = 0.5
    max_tool_rounds: int = 3
    structured_output: str = "json_schema"
    use_tools: bool = True
    retries: int = 1  # model calls that failed are tried once more, then the fallback answers


@dataclass
class ModelAnswer:
    answer: str
    citations: list[int]
    confidence: float
    needs_human: bool
    handoff_reason: str | None

    @classmethod
    def parse(cls, content: str) -> ModelAnswer:
        data = parse_json_object(content)
        answer = data.get("answer")
        if not isinstance(answer, str):
            raise LLMError("the answer field is missing", kind=LLMErrorKind.BAD_OUTPUT, retryable=True)
        citations: list[int] = []
        for item in data.get("citations") or []:
            if isinstance(item, bool):
                continue
            if isinstance(item, int):
                citations.append(item)
            elif isinstance(item, str) and item.strip().strip("[]#").isdigit():
                citations.append(int(item.strip().strip("[]#")))
        try:
            confidence = min(max(float(data.get("confidence", 0.0)), 0.0), 1.0)
        except (TypeError, ValueError):
            confidence = 0.0
        reason = data.get("handoff_reason")
        return cls(answer.strip(), citations, confidence, bool(data.get("needs_human")),
                   reason if isinstance(reason, str) else None)


@dataclass
class _Draft:
    answer: ModelAnswer
    book: SourceBook
    tools: ToolContext
    session: MaskSession


class LLMAgent:
    def __init__(
        self,
        model: ChatModel,
        retriever: Retriever,
        fallback: Agent,
        prompts: PromptBuilder,
        profile: BusinessProfile,
        *,
        tools: ToolBox | None = None,
        config: LLMAgentConfig | None = None,
        masker: PIIMasker | None = None,
        injections: InjectionDetector | None = None,
        usage: UsageRecorder | None = None,
        fallbacks: FallbackRecorder | None = None,
        detect: Callable[[str, str | None], str] = detect_language,
        intents: IntentDetector | None = None,
        texts: TextCatalog = text,
        glossary: Glossary | None = None,
        reranker_name: str = "local",
        canary: str | None = None,
    ) -> None:
        self._model = model
        self._retriever = retriever
        self._fallback = fallback
        self._prompts = prompts
        self._profile = profile
        self._config = config or LLMAgentConfig()
        self._tools = tools if self._config.use_tools else None
        self._tool_defs = self._tools.definitions() if self._tools is not None else []
        self._masker = masker or PIIMasker()
        self._injections = injections or InjectionDetector()
        self._usage = usage
        self._fallbacks = fallbacks
        self._detect = detect
        self._intents = intents or IntentDetector()
        self._texts = texts
        self._glossary = glossary if glossary is not None else Glossary()
        self._reranker_name = reranker_name
        self._prefetch = SearchPrefetch(retriever, self._intents, self._glossary)
        self.name = model.name
        self._canary = canary or f"SL-{secrets.token_hex(6)}"
        self._instructions = instructions(profile, canary=self._canary,
                                          tools=[d["function"]["name"] for d in self._tool_defs])
        self._guard = OutputGuard(self._instructions, canary=self._canary, detector=self._injections)
        self._response_format = response_format(self._config.structured_output)
        self._overhead = schema_tokens(prompts.count_text, self._tool_defs, self._response_format)

    # ------------------------------------------------------------------ entry point
    def prepare(self, text: str) -> None:
        """The message ``text`` will be answered soon (see :class:`SearchPrefetch`)."""
        self._prefetch.prepare(text)

    def abandon(self, text: str) -> None:
        """The message ``text`` will not be answered after all (see :class:`SearchPrefetch`)."""
        self._prefetch.abandon(text)

    async def answer(self, request: AgentRequest, on_delta: DeltaCallback | None = None) -> Reply:
        started = time.monotonic()
        question = " ".join(request.text.split())
        language = self._detect(question, request.language_hint)
        reply = self._canned_reply(question, language)
        if reply is not None:
            if on_delta is not None:
                for piece in stream_pieces(reply.text):
                    await on_delta(piece)
        else:
            reply = await self._grounded(request, question, language, on_delta)
        logger.info("agent replied", extra={
            "conversation_id": request.conversation_id, "language": reply.language,
            "confidence": round(reply.confidence, 3), "escalate": reply.escalate, "reason": reply.reason,
            "sources": len(reply.sources), "answerer": reply.backend.get("answerer"),
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        })
        return reply

    def _canned_reply(self, question: str, language: str) -> Reply | None:
        backend = {"answerer": self.name, "reranker": self._reranker_name}
        if not question:
            return Reply(self._texts("empty_prompt", language), language, 1.0, reason=Reason.EMPTY_MESSAGE,
                         backend=backend)
        small_talk = self._intents.small_talk(question)
        if small_talk is SmallTalk.THANKS:
            return Reply(self._texts("welcome", language), language, 1.0, backend=backend)
        if small_talk is SmallTalk.GREETING:
            return Reply(self._texts("greeting", language, business=self._profile.name), language, 1.0,
                         backend=backend)
        if self._intents.classify(question) is IntentReason.CUSTOMER_REQUEST:
            return Reply(self._texts("handoff_requested", language), language, 1.0, escalate=True,
                         reason=Reason.CUSTOMER_REQUEST, backend=backend)
        return None

    # ------------------------------------------------------------------ grounded answer
    async def _grounded(self, request: AgentRequest, question: str, language: str,
                        on_delta: DeltaCallback | None) -> Reply:
        sensitive = self._intents.classify(question) is IntentReason.SENSITIVE_TOPIC
        asked = self._glossary.expand(question)
        search_query = self._glossary.expand(request.search_query) if request.search_query else asked
        if search_query != asked:  # a follow-up rewritten from memory
            self._retriever.discard(asked)  # in case ``prepare`` started it
        try:
            chunks = await self._retriever.search(search_query, self._config.top_k, other_languages=OTHER_LANGUAGES)
        except (VectorIndexError, EmbeddingError) as exc:
            raise AgentUnavailableError(f"retrieval failed: {type(exc).__name__}") from exc
        backend = {"answerer": self.name,
                   "reranker": chunks[0].extra.get("reranked_by", self._reranker_name) if chunks else
                   self._reranker_name}
        stream = StreamState()
        attempt = 0
        while True:
            attempt += 1
            try:
                draft = await self._draft(request, question, language, chunks, on_delta, stream)
                break
            except (LLMError, PromptTooLarge) as exc:
                kind = exc.kind if isinstance(exc, LLMError) else "prompt_too_large"
                if isinstance(exc, LLMError) and exc.retryable and attempt <= self._config.retries:
                    logger.warning("model call failed (%s); trying once more", kind,
                                   extra={"conversation_id": request.conversation_id})
                    stream.stopped = stream.stopped or stream.streamed  # no second copy in the chat bubble
                    continue
                logger.warning("model failed (%s); the extractive answerer replies instead", kind,
                               extra={"conversation_id": request.conversation_id})
                self._count("answerer", kind)
                return await self._fallback.answer(request, None if stream.streamed else on_delta)
        return self._decide(draft, request, question, language, sensitive, chunks, backend)

    async def _draft(self, request: AgentRequest, question: str, language: str, chunks: Sequence[RetrievedChunk],
                     on_delta: DeltaCallback | None, stream: StreamState) -> _Draft:
        session = self._masker.session()
        book = SourceBook(self._injections)
        book.add_fact("business-profile", self._profile.source_text())
        book.add_chunks(chunks)
        if book.removed_sentences:
            self._count("documents", "injection_removed")
            logger.warning("removed %d document sentences addressed to the assistant", book.removed_sentences,
                           extra={"conversation_id": request.conversation_id})
        prompt = self._prompts.build(system=self._instructions, book=book, request=request, question=question,
                                     language=language, session=session, count=self._model.count_prompt,
                                     overhead_tokens=self._overhead)
        messages = prompt.messages
        context = ToolContext(request, book, session)
        customer = _customer_texts(request, question)
        rounds = self._config.max_tool_rounds if self._tool_defs else 0
        force_answer = rounds == 0
        for round_index in range(rounds + 1):
            relay = self._relay(on_delta, stream, book, session, customer)
            result = await self._complete(request, messages, force_answer, relay)
            if not result.tool_calls:
                parsed = ModelAnswer.parse(result.content)
                self._check_language(parsed, language)
                return _Draft(parsed, book, context, session)
            if force_answer:
                raise LLMError("the model called a tool after tools were closed", kind=LLMErrorKind.BAD_OUTPUT,
                               retryable=True)
            messages.append({"role": "assistant", "content": result.content or None,
                             "tool_calls": [call.as_message() for call in result.tool_calls]})
            for call in result.tool_calls:
                outcome = await self._tools.run(call, context) if self._tools is not None else "error: no tools"
                room = self._prompts.room_left(messages, self._model.count_prompt, self._overhead) - 8
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": self._prompts.fit_tool_result(outcome, max(room, 0))})
            room = self._prompts.room_left(messages, self._model.count_prompt, self._overhead)
            force_answer = force_answer or room < MIN_TOOL_ROOM or round_index == rounds - 1
            if room < 0:
                raise PromptTooLarge(f"tool results left {room} tokens")
        raise LLMError("no answer after the tool rounds", kind=LLMErrorKind.BAD_OUTPUT, retryable=True)

    async def _complete(self, request: AgentRequest, messages: list[dict], force_answer: bool,
                        relay: DeltaRelay | None) -> ChatResult:
        tools = self._tool_defs or None
        choice = ("none" if force_answer else "auto") if tools else None
        try:
            result = await self._model.complete(messages, tools=tools, tool_choice=choice,
                                                response_format=self._response_format,
                                                on_content=relay.feed if relay is not None else None)
        except LLMError as exc:
            await self._record(request, exc.prompt_tokens or 0, 0, exc.kind, True, 0)
            raise
        await self._record(request, result.usage.prompt_tokens, result.usage.completion_tokens, "ok",
                           result.usage.estimated, result.elapsed_ms)
        return result

    def _relay(self, on_delta: DeltaCallback | None, stream: StreamState, book: SourceBook,
               session: MaskSession, customer: list[str]) -> DeltaRelay | None:
        if on_delta is None:
            return None
        evidence = Evidence(cited=[e.text for e in book.entries], customer=customer)
        return DeltaRelay(on_delta, render=lambda raw: _customer_text(raw, session),
                          acceptable=lambda shown: self._guard.check(shown, evidence).ok, state=stream)

    def _check_language(self, parsed: ModelAnswer, language: str) -> None:
        """Chinese and Tamil answers must be in their script; a wrong-language answer is retried, then replaced."""
        if parsed.needs_human or not parsed.answer:
            return
        script = {"zh": _HAN, "ta": _TAMIL}.get(language)
        if script is not None and not script.search(parsed.answer):
            self._count("answerer", "wrong_language")
            raise LLMError(f"the answer is not in {language}", kind=LLMErrorKind.BAD_OUTPUT, retryable=True)
        if script is None and self._detect(parsed.answer, language) != language:
            self._count("answerer", "language_mismatch")
            logger.info("the answer may not be in the customer's language", extra={"language": language})

    # ------------------------------------------------------------------ deciding what goes out
    def _decide(self, draft: _Draft, request: AgentRequest, question: str, language: str, sensitive: bool,
                chunks: Sequence[RetrievedChunk], backend: dict[str, str]) -> Reply:
        parsed, book = draft.answer, draft.book
        cited: list[SourceEntry] = []
        dropped = 0
        for number in dict.fromkeys(parsed.citations):
            entry = book.get(number)
            if entry is None:
                dropped += 1
            else:
                cited.append(entry)
        if dropped:
            self._count("citation", "hallucinated")
            logger.warning("dropped %d citations to sources the model was not given", dropped,
                           extra={"conversation_id": request.conversation_id})
        escalation = draft.tools.escalation
        body = _customer_text(parsed.answer, draft.session)

        def handoff(key: str, reason: str) -> Reply:
            return Reply(self._texts(key, language), language, parsed.confidence, escalate=True, reason=reason,
                         sources=_staff_sources(cited, book, chunks), backend=backend)

        fallback_reason = escalation or (Reason.SENSITIVE_TOPIC if sensitive else None)
        if escalation == Reason.CUSTOMER_REQUEST:
            return handoff("handoff_requested", Reason.CUSTOMER_REQUEST)
        if parsed.needs_human or not body:
            return handoff("handoff", fallback_reason or Reason.LOW_CONFIDENCE)
        if not cited:
            self._count("citation", "missing")
            return handoff("handoff", fallback_reason or Reason.UNGROUNDED)
        if parsed.confidence < self._config.confidence_threshold:
            return handoff("handoff", fallback_reason or Reason.LOW_CONFIDENCE)
        verdict = self._guard.check(body, Evidence(cited=[e.text for e in cited],
                                                   customer=_customer_texts(request, question)))
        if not verdict.ok:
            for kind in verdict.kinds:
                self._count("guard", kind)
            logger.warning("output guard stopped an answer: %s", ", ".join(verdict.kinds),
                           extra={"conversation_id": request.conversation_id})
            return handoff("handoff", Reason.UNSAFE)
        if fallback_reason:
            body = f"{body}\n\n{self._texts('team_notified', language)}"
        return Reply(body, language, parsed.confidence, escalate=bool(fallback_reason), reason=fallback_reason,
                     sources=[_source(e) for e in cited], backend=backend)

    async def _record(self, request: AgentRequest, prompt: int, completion: int, outcome: str, estimated: bool,
                      latency_ms: int) -> None:
        if self._usage is None:
            return
        await self._usage.record(UsageEntry(
            conversation_id=request.conversation_id, contact_id=request.contact_id, channel=request.channel,
            purpose="answer", model=self._model.model, prompt_tokens=prompt, completion_tokens=completion,
            outcome=outcome, estimated=estimated, latency_ms=latency_ms))

    def _count(self, component: str, reason: str) -> None:
        if self._fallbacks is not None:
            self._fallbacks.record(component, reason)


def _customer_text(raw: str, session: MaskSession) -> str:
    """Model text as the customer reads it: placeholders restored, source markers removed."""
    return _MARKERS.sub("", session.unmask(raw)).strip()


def _customer_texts(request: AgentRequest, question: str) -> list[str]:
    return [question] + [t.text for t in request.history if t.role == "user"]


def _source(entry: SourceEntry) -> Source:
    return Source(document=entry.document, chunk_id=entry.chunk_id, score=entry.score, text=entry.text)


def _staff_sources(cited: Sequence[SourceEntry], book: SourceBook, chunks: Sequence[RetrievedChunk]) -> list[Source]:
    """What the answer cited, then the best chunks: context for the person taking over."""
    sources = [_source(e) for e in cited]
    seen = {s.chunk_id for s in sources}
    for chunk in chunks:
        if len(sources) >= STAFF_SOURCES:
            break
        if chunk.chunk_id not in seen:
            sources.append(Source(document=chunk.document, chunk_id=chunk.chunk_id, score=chunk.score,
                                  text=chunk.text))
            seen.add(chunk.chunk_id)
    return sources
