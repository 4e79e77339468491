"""A business's own words, read from a data file the owner can edit.

Every business names its services, sizes and places differently ("a condo", "the 1 kg one",
"a senior physio"), and no such word belongs in the code. What the agent and memory need to
know of them lives in ``vocabulary.json`` in the data dir (or ``SUPPORTLAH_VOCABULARY_FILE``):

* ``glossary`` — phrase in the customer's language -> English words, for the business's own
  terms (the generic customer-service words of the four languages ship with the code);
* ``slots`` — entity type -> canonical value -> surface forms in any language: what a
  follow-up may swap ("and for a condo?") and what a customer may say about themselves;
* ``facts`` — which slot types are remembered when a customer states them in the first person,
  and ``named_facts`` — those kept as written (a place, a brand) instead of their canonical value;
* ``count_words`` — regular expressions for what the business counts ("aircons?", "cakes?"),
  so "I have 3 aircons" is remembered as a count;
* ``profile_slots`` — key type -> value types a remembered fact fills in ("service" questions
  take the customer's "property").

Every field is optional; a missing file is an empty vocabulary (the agent then relies on
what it learns from the documents themselves). The sample business's file is
``supportlah/sample_business/vocabulary.json``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

VOCABULARY_FILE = "vocabulary.json"


class VocabularyError(ValueError):
    """The vocabulary file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class BusinessVocabulary:
    glossary: Mapping[str, str] = field(default_factory=dict)
    slots: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    facts: Sequence[str] = ()
    named_facts: Sequence[str] = ()
    count_words: Sequence[str] = ()
    profile_slots: Mapping[str, Sequence[str]] = field(default_factory=dict)


def load_vocabulary(path: Path | None) -> BusinessVocabulary:
    """The vocabulary in ``path``; an empty one when ``path`` is None or does not exist."""
    if path is None or not path.is_file():
        return BusinessVocabulary()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VocabularyError(f"{path}: cannot read the vocabulary ({exc})") from exc
    if not isinstance(data, dict):
        raise VocabularyError(f"{path}: the vocabulary must be a JSON object")
    try:
        vocabulary = BusinessVocabulary(
            glossary=_string_map(data.get("glossary", {}), "glossary"),
            slots={t: {v: _strings(s, f"slots.{t}.{v}") for v, s in _object(values, f"slots.{t}").items()}
                   for t, values in _object(data.get("slots", {}), "slots").items()},
            facts=_strings(data.get("facts", []), "facts"),
            named_facts=_strings(data.get("named_facts", []), "named_facts"),
            count_words=_strings(data.get("count_words", []), "count_words"),
            profile_slots={k: _strings(v, f"profile_slots.{k}")
                           for k, v in _object(data.get("profile_slots", {}), "profile_slots").items()},
        )
        for pattern in vocabulary.count_words:
            re.compile(pattern)
    except (TypeError, re.error) as exc:
        raise VocabularyError(f"{path}: {exc}") from exc
    return vocabulary


def _object(value: object, name: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{name!r} must be an object")
    return value


def _string_map(value: object, name: str) -> dict[str, str]:
    mapping = _object(value, name)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise TypeError(f"{name!r} must map strings to strings")
    return dict(mapping)


def _strings(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"{name!r} must be a list of non-empty strings")
    return tuple(value)
