"""No business's vocabulary in the code: the sample business's words live in its data file only.

Every owner brings different documents. What the agent and memory know of a business's
services, sizes and places comes from its documents or its ``vocabulary.json``; if the
sample's words crept back into ``agent/``, ``memory/`` or ``rag/`` the product would again
answer the sample business better than the owner's own.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from config.vocabulary import load_vocabulary

REPO = Path(__file__).resolve().parent.parent
SAMPLE_VOCABULARY = REPO / "supportlah" / "sample_business" / "vocabulary.json"
PACKAGES = ("agent", "memory", "rag")
# Slot types that are the sample business's trade (its areas are Singapore's, shared by every business).
TRADE_TYPES = ("property", "service", "refrigerant", "brand")
# Ordinary English that the sample also happens to use for a service: "pip install" is no aircon word.
ORDINARY_WORDS = frozenset({"install"})


def _sample_words() -> set[str]:
    vocabulary = load_vocabulary(SAMPLE_VOCABULARY)
    words = {surface for t in TRADE_TYPES for forms in vocabulary.slots.get(t, {}).values() for surface in forms}
    words |= set(vocabulary.glossary)
    return {w for w in words if len(w) >= 3 and w.lower() not in ORDINARY_WORDS}


def _hits(text: str, word: str) -> bool:
    if re.search(r"[\u3400-\u9fff]", word):
        return word in text
    if re.search(r"[\u0b80-\u0bff]", word):  # Tamil stems: a short one is also part of common words
        return len(word) >= 6 and word in text
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def test_the_sample_vocabulary_file_is_complete_and_readable():
    vocabulary = load_vocabulary(SAMPLE_VOCABULARY)
    assert {"property", "service", "area"} <= set(vocabulary.slots)
    assert vocabulary.glossary and vocabulary.facts and vocabulary.count_words
    assert json.loads(SAMPLE_VOCABULARY.read_text(encoding="utf-8"))  # plain JSON an owner can edit


def test_no_sample_business_words_in_agent_memory_or_rag():
    words = _sample_words()
    assert len(words) > 50, "the sample vocabulary is what this test checks against"
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if not path.is_file() or path.suffix not in (".py", ".json", ".jsonl"):
                continue
            text = path.read_text(encoding="utf-8")
            found += [f"{path.relative_to(REPO)}: {w}" for w in sorted(words) if _hits(text, w)]
    assert not found, "business vocabulary in code:\n" + "\n".join(found)
