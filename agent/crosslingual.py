"""Cross-lingual glosses learned from the knowledge base's own documents.

A business that writes a Chinese or Malay guide next to its English price lists usually names
its services in both languages somewhere: a "中文 | English" table of terms, or the English name
in brackets after the local one ("上门物理治疗（Home visit）", "ahli fisioterapi (Physiotherapist)").
Those pairs are the business's own translation of its vocabulary, so a Chinese question can be
searched with the English words the price list uses. Nothing here is written for any one
business: the pairs are read from whatever chunks retrieval returned for the question.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from agent.segment import UnitKind, segment
from rag.types import RetrievedChunk

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TAMIL = re.compile(r"[\u0b80-\u0bff]")
_LATIN_TERM = re.compile(r"^[A-Za-z][A-Za-z0-9 .&'/()+-]{1,60}$")
# 上门物理治疗（Home visit） / 上门物理治疗(Home visit)
_HAN_GLOSS = re.compile(r"([\u3400-\u9fff]{2,6})[（(]\s*([A-Za-z][A-Za-z0-9 .&'/+-]{1,40}?)\s*[）)]")
# ahli fisioterapi (Physiotherapist): the one to three words before an English name in brackets
_LATIN_GLOSS = re.compile(r"\b((?:[a-z]{3,}\s){0,2}[a-z]{3,})\s\(([A-Z][A-Za-z0-9 .&'/+-]{2,40})\)")
_MAX_GLOSSES = 4


def learned_glosses(chunks: Iterable[RetrievedChunk]) -> dict[str, str]:
    """Local term -> English term, from term tables and bracketed English names in ``chunks``."""
    pairs: dict[str, str] = {}
    for chunk in chunks:
        for unit in segment(chunk.text, chunk.heading):
            pair = term_pair(unit.text) if unit.kind is UnitKind.ROW else None
            if pair is not None:
                pairs.setdefault(*pair)
        for local, english in _HAN_GLOSS.findall(chunk.text):
            pairs.setdefault(local, english.strip())
        if chunk.language not in (None, "en"):
            for local, english in _LATIN_GLOSS.findall(chunk.text):
                if local.lower() != english.lower():
                    pairs.setdefault(local, english.strip())
    return pairs


def term_pair(row: str) -> tuple[str, str] | None:
    """(local, English) when ``row`` is a line of a term table — two cells, a term in a local script
    and its English — else None. Such a row is a dictionary entry, never an answer to quote."""
    if "|" in row:
        cells = [c.strip() for c in row.strip("|").split("|")]
    else:  # a spreadsheet-style record, "中文: 初诊; 英文: Initial assessment"
        cells = [field.partition(": ")[2].strip() for field in row.split("; ")]
    if len(cells) != 2:
        return None
    local = next((c for c in cells if _HAN.search(c) or _TAMIL.search(c)), None)
    english = next((c for c in cells if c is not local and _LATIN_TERM.match(c)), None)
    if local and english and len(local) <= 20 and not any(ch.isdigit() for ch in local + english):
        return local, english
    return None


def glosses_in(question: str, pairs: Mapping[str, str]) -> list[str]:
    """The English of every learned local term the question uses, longest terms first, at most a few."""
    found: list[str] = []
    remaining = question
    for local in sorted(pairs, key=len, reverse=True):
        if _HAN.search(local) or _TAMIL.search(local):
            hit = local in remaining
        else:
            hit = re.search(rf"\b{re.escape(local)}\b", remaining, re.IGNORECASE) is not None
        if hit and pairs[local].lower() not in question.lower():
            found.append(pairs[local])
            remaining = remaining.replace(local, " ")
        if len(found) >= _MAX_GLOSSES:
            break
    return found
