"""Durable facts customers state about themselves, read from their messages.

"I live in a condo in Bishan" tells us the property type and the area for every later
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
    kind: str  # property | area | units | brand | name | refrigerant
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
_UNITS = re.compile(
    r"\b(\d{1,2})\s*(?:x\s*)?(?:aircons?|air-?cons?|air conditioners?|fan ?coils?|units?|unit aircon|"
    r"buah aircon|aircon units?)\b|(\d{1,2})\s*(?:台|个)(?:冷气|空调)",
    re.IGNORECASE,
)
_SLOT_FACTS = {"property": "property", "area": "area", "brand": "brand", "refrigerant": "refrigerant"}


class PatternFactExtractor:
    name = "patterns"

    def __init__(self, lexicon: SlotLexicon | None = None, *, max_sentence_chars: int = 300) -> None:
        self._lexicon = lexicon or SlotLexicon()
        self._max_chars = max_sentence_chars

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
            units = _UNITS.search(sentence)
            if units:
                found["units"] = StatedFact("units", units.group(1) or units.group(2), source)
            for slot in self._lexicon.find(sentence):
                kind = _SLOT_FACTS.get(slot.type)
                if kind and kind not in found:
                    found[kind] = StatedFact(kind, slot.surface if kind in ("area", "brand") else slot.value,
                                             source)
        return list(found.values())
