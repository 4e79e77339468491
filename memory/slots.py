"""Typed entities ("slots") that customer questions turn on: property type, service, area…

A follow-up like "and for the 1 kg one?" only makes sense against the previous question,
and the way to merge the two is to swap the entity of the same type ("the 500 g cake" →
"the 1 kg one"). Stated facts ("I live in Bishan") are the same entities said
in the first person. Both need to know which words name which kind of thing, in
English, Chinese, Malay and Tamil. That knowledge is data, never code: each business
passes its own entries to :class:`SlotLexicon` (its vocabulary file, ``config.vocabulary``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# type -> canonical value -> surface forms (any language). Empty here: a business's entities come
# from its vocabulary file (``config.vocabulary``) and from its documents (``memory.learned``).
NO_SLOTS: Mapping[str, Mapping[str, Sequence[str]]] = MappingProxyType({})

_UNSPACED = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")
ARTICLE = re.compile(r"(?:\b(?:a|an|the|my|our)\s+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Slot:
    type: str
    value: str  # canonical value, e.g. "1 kg"
    surface: str  # the words as written
    start: int
    end: int


class SlotLexicon:
    """Finds typed entities in text: longest surface form first, never overlapping."""

    def __init__(self, entries: Mapping[str, Mapping[str, Sequence[str]]] = NO_SLOTS) -> None:
        forms: list[tuple[str, str, str]] = []
        for slot_type, values in entries.items():
            for value, surfaces in values.items():
                forms += [(surface, slot_type, value) for surface in surfaces]
        forms.sort(key=lambda item: len(item[0]), reverse=True)
        self._patterns: list[tuple[re.Pattern[str], str, str]] = []
        for surface, slot_type, value in forms:
            if _UNSPACED.search(surface):  # Chinese and Tamil: substrings (Tamil adds case suffixes)
                pattern = re.compile(re.escape(surface))
            else:
                pattern = re.compile(rf"(?<![\w-]){re.escape(surface)}(?![\w-])", re.IGNORECASE)
            self._patterns.append((pattern, slot_type, value))
        self.types = frozenset(entries)

    def find(self, text: str) -> list[Slot]:
        taken = [False] * len(text)
        found: list[Slot] = []
        for pattern, slot_type, value in self._patterns:
            for match in pattern.finditer(text):
                if any(taken[match.start():match.end()]):
                    continue
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
                found.append(Slot(slot_type, value, match.group(0), match.start(), match.end()))
        return sorted(found, key=lambda slot: slot.start)

    def values(self, text: str, slot_type: str) -> list[str]:
        return [slot.value for slot in self.find(text) if slot.type == slot_type]


def with_article(text: str, slot: Slot) -> tuple[int, str]:
    """Start of ``slot`` including an article or possessive right before it, and that phrase."""
    match = ARTICLE.search(text[: slot.start])
    start = match.start() if match else slot.start
    return start, text[start: slot.end]
