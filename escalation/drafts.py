"""What the AI offers staff: a draft answer with its sources, and a short summary of the ask.

The agent hands off when it is not confident enough to answer the customer, but a
low-confidence draft is still a useful head start for a person, who can send it with
one button. Drafting is a nicety: when retrieval fails the card simply has no draft.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.agent import Retriever
from agent.answer import AnswerDrafter
from config.types import Source
from rag.embedding import EmbeddingError
from rag.index import VectorIndexError

log = logging.getLogger(__name__)

SUMMARY_QUESTION_CHARS = 200
SUMMARY_EARLIER_CHARS = 100


@dataclass(frozen=True)
class Draft:
    text: str
    sources: list[Source] = field(default_factory=list)


class Drafter(Protocol):
    async def draft(self, question: str) -> Draft | None: ...


class KnowledgeDrafter:
    """Drafts from the business's documents with the same retriever and answerer the agent uses."""

    def __init__(self, retriever: Retriever, answerer: AnswerDrafter, *, top_k: int = 5) -> None:
        self._retriever = retriever
        self._answerer = answerer
        self._top_k = top_k

    async def draft(self, question: str) -> Draft | None:
        if not question.strip():
            return None
        try:
            chunks = await self._retriever.search(question, self._top_k)
            if not chunks:
                return None
            answer = await self._answerer.answer(question, chunks)
        except (VectorIndexError, EmbeddingError) as exc:
            log.warning("no draft for staff: retrieval failed", extra={"error": type(exc).__name__})
            return None
        if not answer.text.strip():
            return None
        sources = [Source(document=s.document, chunk_id=s.chunk_id, score=round(s.score, 4)) for s in answer.sources]
        return Draft(text=answer.text.strip(), sources=sources)


def summarize(questions: Sequence[str]) -> str:
    """Extractive summary of what the customer wants: their latest question, then the one before.

    Deterministic and language-neutral (the customer's own words); an LLM summarizer can
    replace it behind the same signature.
    """
    asked = [" ".join(q.split()) for q in questions if q.strip()]
    if not asked:
        return ""
    summary = f"Asks: “{_clip(asked[-1], SUMMARY_QUESTION_CHARS)}”"
    earlier = [q for q in asked[:-1] if q != asked[-1]]
    if earlier:
        summary += f" (earlier: “{_clip(earlier[-1], SUMMARY_EARLIER_CHARS)}”)"
    return summary


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
