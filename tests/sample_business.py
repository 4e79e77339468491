"""The sample business's vocabulary (``supportlah/sample_business/vocabulary.json``), for tests that
exercise the sample knowledge base's follow-ups, glosses and stated facts."""
from __future__ import annotations

from pathlib import Path

from config.vocabulary import BusinessVocabulary, load_vocabulary
from memory.facts import PatternFactExtractor
from memory.rewrite import HeuristicRewriter
from memory.slots import SlotLexicon

SAMPLE_VOCABULARY_FILE = Path(__file__).resolve().parent.parent / "supportlah" / "sample_business" / "vocabulary.json"


def sample_vocabulary() -> BusinessVocabulary:
    return load_vocabulary(SAMPLE_VOCABULARY_FILE)


def sample_lexicon() -> SlotLexicon:
    return SlotLexicon(sample_vocabulary().slots)


def sample_rewriter() -> HeuristicRewriter:
    vocabulary = sample_vocabulary()
    return HeuristicRewriter(SlotLexicon(vocabulary.slots), profile_slots=vocabulary.profile_slots)


def sample_facts() -> PatternFactExtractor:
    vocabulary = sample_vocabulary()
    return PatternFactExtractor(SlotLexicon(vocabulary.slots), fact_types=vocabulary.facts,
                                named_types=vocabulary.named_facts, count_words=vocabulary.count_words)
