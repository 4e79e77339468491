"""What an answerer returns and the interface the agent expects of one.

Today the only answerer is extractive (quotes the documents); an LLM answerer
plugs in behind the same Protocol, which is why the agent never looks inside
how the text was produced, only at the evidence it reports.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from config.types import Source
from rag.types import RetrievedChunk


@dataclass(frozen=True)
class Answer:
    """An answer drafted from retrieved chunks, with the evidence behind it."""

    text: str  # verbatim document text (no lead-in); empty if nothing usable was found
    language: str | None  # language the quoted text is written in
    sources: list[Source]  # the chunks quoted, best first
    coverage: float  # share of the question's (IDF-weighted) terms found in the quoted text, 0..1
    similarity: float | None = None  # cosine of the question and the best quoted unit, if embedded
    chunk_rank: int = 0  # rank in the retrieved list of the chunk the best unit came from
    features: dict[str, float] = field(default_factory=dict)  # anything else a confidence model may use


class Answerer(Protocol):
    name: str

    async def answer(self, question: str, chunks: Sequence[RetrievedChunk], *, focus: str | None = None) -> Answer:
        """Draft an answer to ``question`` from ``chunks``. ``focus``: when ``question`` is a follow-up
        rewritten with the previous question's words, what the customer actually said now; its
        words decide between otherwise equal rows ("… the 1 kg cake — and the 2 kg one?")."""
        ...
