"""Durable facts customers state about themselves, read from their messages.

"I live in Bishan and have two dogs" tells us the area and a count for every later
visit; "Do you serve Bishan?" tells us nothing about the customer. So a fact is an entity
(see ``memory.slots``) or a name or a count, found in a sentence spoken in the first
person. An LLM can do better (``FactExtractor``); :class:`PatternFactExtractor` is the
offline reading, in English, Chinese, Malay and Tamil.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from memory.slots import SlotLexicon


@dataclass(frozen=True)
class StatedFact:
    kind: str  # name | units | a slot type of the business's vocabulary (``facts``)
    value: str
    sentence: str  # where it was said, kept so staff (and an erasure) can see the source


class FactExtractor(Protocol):
    name: str

    async def extract(self, text: str, language: str | None) -> Sequence[StatedFact]:
        """Facts the customer states about themselves in ``text`` (none for questions about the business)."""


_SENTENCES = re.compile(r"(?<=[.!?。！？;；])\s*|\n+")
_FIRST_PERSON = re.compile(
    r"\b(?:i|i'm|im|i've|we|we're|we've|my|our|mine)\b"  # English
    r"|\b(?:saya|aku|kami|kita)\b"  # Malay
    r"|我|我们|我家"  # Chinese
    r"|நான்|எனக்கு|என்\s|எங்கள்|எங்க",  # Tamil
    re.IGNORECASE,
)
# A first-person sentence that is really a question about the business states nothing.
_HYPOTHETICAL = re.compile(r"\b(?:if|whether|suppose|kalau|jika)\b|如果|假如", re.IGNORECASE)
_NAME_PATTERNS = (
    re.compile(r"\b(?i:my name is|my name's) ([A-Z][\w'-]+(?: [A-Z][\w'-]+)?)"),  # a capitalised name
    re.compile(r"\b(?i:call me|this is) ([A-Z][\w'-]+)\b"),
    re.compile(r"\b(?i:nama saya)(?: ialah| adalah)? ([A-Z][\w'-]+(?: [A-Z][\w'-]+)?)"),
    re.compile(r"我(?:叫|的名字是|姓)([\u4e00-\u9fff]{1,3})"),
    re.compile(r"என் பெயர் (\S+)"),
)
# What any business may count; its own things ("aircons", "cakes") come from its vocabulary.
GENERIC_COUNT_WORDS: tuple[str, ...] = (r"units?", r"pcs", r"pieces?", r"sets?", r"pax", r"buah", r"台", r"个", r"件")
_COUNT_CJK = re.compile(r"[\u3400-\u9fff]")


def _count_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """``3 units``, ``2 x aircons``, ``两台``-style counts: Latin words on word boundaries, CJK as written."""
    latin = "|".join(w for w in words if not _COUNT_CJK.search(w))
    cjk = "|".join(w for w in words if _COUNT_CJK.search(w))
    parts = [rf"\b(\d{{1,2}})\s*(?:x\s*)?(?:{latin})\b"] if latin else []
    parts.append(rf"(\d{{1,2}})\s*(?:{cjk})" if cjk else r"(?!x)x")
    return re.compile("|".join(parts), re.IGNORECASE)


class PatternFactExtractor:
    name = "patterns"

    def __init__(self, lexicon: SlotLexicon | None = None, *, max_sentence_chars: int = 300,
                 fact_types: Sequence[str] = (), named_types: Sequence[str] = (),
                 count_words: Sequence[str] = ()) -> None:
        """``fact_types``: the slot types remembered when stated; ``named_types``: those kept as written
        (a place, a brand) rather than as their canonical value; ``count_words``: what the business
        counts. All three come from its vocabulary file (``config.vocabulary``)."""
        self._lexicon = lexicon or SlotLexicon()
        self._max_chars = max_sentence_chars
        self._fact_types = frozenset(fact_types)
        self._named_types = frozenset(named_types)
        # The business's own words first: "2 cake boxes" matches its "cake boxes?" before a generic word.
        self._units = _count_pattern([*count_words, *GENERIC_COUNT_WORDS])

    async def extract(self, text: str, language: str | None = None) -> list[StatedFact]:
        return self.extract_now(text)

    def extract_now(self, text: str) -> list[StatedFact]:
        found: dict[str, StatedFact] = {}
        for sentence in (s.strip() for s in _SENTENCES.split(text)):
            if not sentence or not _FIRST_PERSON.search(sentence) or _HYPOTHETICAL.search(sentence):
                continue
            source = sentence[: self._max_chars]
            for pattern in _NAME_PATTERNS:
                match = pattern.search(sentence)
                if match:
                    found["name"] = StatedFact("name", match.group(1).strip().rstrip(".,!?;:。，！？"), source)
                    break
            units = self._units.search(sentence)
            if units:
                found["units"] = StatedFact("units", next(g for g in units.groups() if g), source)
            for slot in self._lexicon.find(sentence):
                kind = slot.type
                if kind in self._fact_types and kind not in found:
                    named = kind in self._named_types
                    found[kind] = StatedFact(kind, slot.surface if named else slot.value, source)
        return list(found.values())
