"""The support agent: decides what to say to one customer message.

Order of decisions, cheapest and safest first: empty message -> prompt;
"thanks"/"hi" -> a kind canned reply; explicit request for a person -> hand
off; otherwise retrieve, draft an answer
and score it. Below the confidence threshold we do not guess: the customer
gets the hand-off text and staff get the would-be sources. Sensitive topics
are answered when we are confident, but staff are always brought in.
Knows nothing of channels; ``on_delta`` lets web chat show the text as it
comes (word groups today, real tokens once an LLM answerer exists).
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from agent.answer import Answer, Answerer
from agent.confidence import Confidence, ConfidenceModel, confidence_features
from agent.crosslingual import glosses_in, learned_glosses
from agent.errors import AgentUnavailableError
from agent.glossary import Glossary
from agent.intents import IntentDetector, IntentReason, SmallTalk
from agent.language import detect_language
from agent.texts import TextCatalog, text
from config.types import AgentRequest, Reply, Source
from rag.embedding import EmbeddingError
from rag.index import VectorIndexError
from rag.types import RetrievedChunk

logger = logging.getLogger(__name__)

DeltaCallback = Callable[[str], Awaitable[None]]


class Retriever(Protocol):
    async def search(self, query: str, k: int, *, other_languages: int = 0) -> list[RetrievedChunk]:
        """The ``k`` best chunks, then the best ``other_languages`` of each document language they miss."""

    def prefetch(self, query: str) -> None:
        """A search for ``query`` is coming soon; work may start now."""

    def discard(self, query: str) -> None:
        """The prefetched ``query`` will not be searched."""


class SearchPrefetch:
    """Starts an agent's search embedding before the agent is asked (``rag.prefetch``).

    ``prepare`` runs when a worker picks the message up, so the e5 pass overlaps the lock, hooks
    and memory; it starts only what ``answer`` will search for (not for small talk or a request
    for a person). ``answer`` works the same whether or not ``prepare`` was called.
    """

    def __init__(self, retriever: Retriever, intents: IntentDetector, glossary: Glossary) -> None:
        self._retriever = retriever
        self._intents = intents
        self._glossary = glossary

    def prepare(self, text: str) -> None:
        question = " ".join(text.split())
        if self._intents.needs_search(question):
            self._retriever.prefetch(self._glossary.expand(question))

    def abandon(self, text: str) -> None:
        """A hook took the message over: stop what ``prepare`` started, if it has not run yet."""
        self._retriever.discard(self._glossary.expand(" ".join(text.split())))


class Reason:
    """``Reply.reason`` values."""

    CUSTOMER_REQUEST = IntentReason.CUSTOMER_REQUEST.value
    SENSITIVE_TOPIC = IntentReason.SENSITIVE_TOPIC.value
    LOW_CONFIDENCE = "low_confidence"
    EMPTY_MESSAGE = "empty_message"


STAFF_SOURCES = 3  # would-be sources kept for staff when we hand off
# The best chunk of each document language the top ones miss is read too: a Chinese FAQ must not
# hide the English price list a Chinese question needs (``rag.retrieval.fair_across_languages``).
OTHER_LANGUAGES = 1


class SupportAgent:
    def __init__(
        self,
        retriever: Retriever,
        answerer: Answerer,
        threshold: float,
        texts: TextCatalog = text,
        detect: Callable[[str, str | None], str] = detect_language,
        *,
        intents: IntentDetector | None = None,
        confidence: Confidence | None = None,
        reranker_name: str | None = None,
        glossary: Glossary | None = None,
        business_name: str | None = None,
        top_k: int = 5,
        words_per_delta: int = 5,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        self._retriever = retriever
        self._answerer = answerer
        self._threshold = threshold
        self._texts = texts
        self._detect = detect
        self._intents = intents or IntentDetector()
        self._confidence = confidence or ConfidenceModel.load()
        self._backend = {
            "answerer": getattr(answerer, "name", type(answerer).__name__),
            "reranker": reranker_name or getattr(getattr(retriever, "reranker", None), "name", "local"),
        }
        self._business_name = business_name
        self._glossary = glossary if glossary is not None else Glossary()
        self._top_k = top_k
        self._words_per_delta = words_per_delta
        self._prefetch = SearchPrefetch(retriever, self._intents, self._glossary)

    def prepare(self, text: str) -> None:
        """The message ``text`` will be answered soon (see :class:`SearchPrefetch`)."""
        self._prefetch.prepare(text)

    def abandon(self, text: str) -> None:
        """The message ``text`` will not be answered after all (see :class:`SearchPrefetch`)."""
        self._prefetch.abandon(text)

    async def answer(self, request: AgentRequest, on_delta: DeltaCallback | None = None) -> Reply:
        started = time.monotonic()
        reply = await self._decide(request)
        if on_delta is not None:
            for piece in stream_pieces(reply.text, self._words_per_delta):
                await on_delta(piece)
        logger.info(
            "agent replied",
            extra={
                "conversation_id": request.conversation_id,
                "language": reply.language,
                "confidence": round(reply.confidence, 3),
                "escalate": reply.escalate,
                "reason": reply.reason,
                "sources": len(reply.sources),
                "elapsed_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return reply

    async def _decide(self, request: AgentRequest) -> Reply:
        question = " ".join(request.text.split())
        language = self._detect(question, request.language_hint)
        if not question:
            return self._canned("empty_prompt", language, confidence=1.0, reason=Reason.EMPTY_MESSAGE)
        small_talk = self._intents.small_talk(question)
        if small_talk is SmallTalk.THANKS:
            return self._canned("welcome", language, confidence=1.0)
        if small_talk is SmallTalk.GREETING:
            if self._business_name:
                return self._canned("greeting", language, confidence=1.0, business=self._business_name)
            return self._canned("empty_prompt", language, confidence=1.0)
        intent = self._intents.classify(question)
        if intent is IntentReason.CUSTOMER_REQUEST:
            return self._canned("handoff_requested", language, confidence=1.0, escalate=True, reason=Reason.CUSTOMER_REQUEST)

        # A follow-up ("and for the 1 kg one?") is searched as the standalone question memory rewrote it to.
        search_query = " ".join((request.search_query or "").split()) or question
        if search_query != question:  # a follow-up rewritten from memory
            self._retriever.discard(self._glossary.expand(question))  # in case ``prepare`` started it
        chunks, answer = await self._draft(search_query, focus=question if search_query != question else None)
        confidence = self._confidence.predict(confidence_features(chunks, answer)) if answer.text else 0.0
        sensitive = intent is IntentReason.SENSITIVE_TOPIC
        if confidence < self._threshold:
            return Reply(
                text=self._texts("handoff", language),
                language=language,
                confidence=confidence,
                escalate=True,
                reason=Reason.SENSITIVE_TOPIC if sensitive else Reason.LOW_CONFIDENCE,
                sources=_staff_sources(answer, chunks),
                backend=dict(self._backend),
            )
        body = answer.text
        if answer.language and answer.language != language:
            body = f"{self._texts('documents_say', language)}\n{body}"
        if sensitive:
            body = f"{body}\n\n{self._texts('team_notified', language)}"
        return Reply(
            text=body,
            language=language,
            confidence=confidence,
            escalate=sensitive,
            reason=Reason.SENSITIVE_TOPIC if sensitive else None,
            sources=list(answer.sources),
            backend=dict(self._backend),
        )

    async def _draft(self, question: str, focus: str | None = None) -> tuple[list[RetrievedChunk], Answer]:
        try:
            chunks = await self._retriever.search(self._glossary.expand(question), self._top_k,
                                                  other_languages=OTHER_LANGUAGES)
            # The documents' own translations of the terms asked about ("上门物理治疗" -> "Home visit"):
            # search again with them, so a Chinese question reaches the English price list.
            learned = glosses_in(question, learned_glosses(chunks))
            if learned:
                question = f"{question} ({'; '.join(learned)})"
                chunks = await self._retriever.search(self._glossary.expand(question), self._top_k,
                                                      other_languages=OTHER_LANGUAGES)
            answer = await self._answerer.answer(question, chunks, focus=focus)
        except (VectorIndexError, EmbeddingError) as exc:
            raise AgentUnavailableError(f"retrieval failed: {type(exc).__name__}") from exc
        return chunks, answer

    def _canned(
        self,
        key: str,
        language: str,
        *,
        confidence: float,
        escalate: bool = False,
        reason: str | None = None,
        **fmt: object,
    ) -> Reply:
        return Reply(
            text=self._texts(key, language, **fmt),
            language=language,
            confidence=confidence,
            escalate=escalate,
            reason=reason,
            backend=dict(self._backend),
        )


def _staff_sources(answer: Answer, chunks: Sequence[RetrievedChunk]) -> list[Source]:
    """What we would have quoted, then the next best chunks: context for the person taking over."""
    sources = list(answer.sources)
    seen = {s.chunk_id for s in sources}
    for chunk in chunks:
        if len(sources) >= STAFF_SOURCES:
            break
        if chunk.chunk_id not in seen:
            sources.append(Source(document=chunk.document, chunk_id=chunk.chunk_id, score=chunk.score, text=chunk.text))
            seen.add(chunk.chunk_id)
    return sources


_TOKEN = re.compile(r"\S+\s*|\s+")
_CJK_PIECE = 12  # characters per piece for text without spaces


def stream_pieces(reply_text: str, words_per_piece: int = 5) -> list[str]:
    """Split text into word groups whose concatenation is exactly ``reply_text``."""
    tokens: list[str] = []
    for token in _TOKEN.findall(reply_text):
        while len(token) > _CJK_PIECE * 2:  # a long unspaced run (Chinese): cut by characters
            tokens.append(token[:_CJK_PIECE])
            token = token[_CJK_PIECE:]
        tokens.append(token)
    return ["".join(tokens[i : i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]
