"""Follow-up questions rewritten into standalone ones before retrieval.

"and for the 1 kg one?" retrieves nothing useful on its own; "How much is the chocolate
cake, 1 kg?" retrieves the price row. An LLM does this best (``QueryRewriter``, to be
implemented by the LLM answerer); offline, :class:`HeuristicRewriter` handles the common
shapes in English, Chinese, Malay and Tamil:

* elliptical follow-ups that only name a thing ("and for the 1 kg one?", "how about weekends?",
  "那周末呢？", "Kalau 2 kg pula?") take the previous question
  and swap the entity of the same type (property type, service, area…), or add the
  entity when the previous question had none of that type;
* follow-ups that ask something new about the same subject ("and how long does it
  take?", "what about the warranty?", "how much does it cost?") keep their words and get
  the previous question's entities appended as context.

A message with its own content words and no follow-up marker is left alone: a new
question must not be bent towards the old one.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from config.types import Turn
from memory.slots import Slot, SlotLexicon, with_article


class QueryRewriter(Protocol):
    name: str

    async def rewrite(self, text: str, history: Sequence[Turn], language: str | None) -> str:
        """``text`` as a standalone question given the recent turns (``text`` itself if it stands alone).

        User turns in ``history`` carry the standalone form of what was asked. Raise on
        failure; the caller falls back to the offline heuristic.
        """


# Markers that a short message leans on the previous one, at its start (or end, for particles).
_LEADING_CUES = (
    # English
    "and what about", "and how about", "how about", "what about", "what if it's", "what if it is", "what if",
    "and if it's", "and if", "and for", "and to", "and in", "and on", "and the", "same for", "and", "also",
    "then", "for", "or",
    # Malay
    "bagaimana pula dengan", "bagaimana dengan", "macam mana dengan", "macam mana pula", "kalau", "jika",
    "untuk", "dan",
    # Chinese
    "那么", "那如果", "如果是", "还有", "那",
    # Tamil ("and …?", "then …?")
    "அப்போ", "அப்படியென்றால்", "மற்றும்",
)
_TRAILING_CUES = ("呢", "pula", "pulak", "juga", "leh", "ah", "hor", "mah")  # "weekend leh?": Singlish leans back
# A pronoun that points back ("how long does it take?", "can I pay for it?"), not a dummy one
# ("is it open on Sunday?" asks something new and must not inherit the last question's subject).
_REFERRING = re.compile(
    r"\b(?:does|do|did|will|would|can|could|should)\s+(?:it|that|this|they|those|these)\b"
    r"|\b(?:it|that|this|them|those|these)\s*[?.!]*$"
    r"|\b(?:untuk|dengan|yang)\s+(?:itu|ini)\b|它|这个|那个",
    re.IGNORECASE,
)
# Words that carry no subject of their own in a follow-up ("how much for the big one ah?").
_FILLERS = frozenset("""
a an the for to in on at of with my our your is are was be it its that this one and or also then too same
how much about what if whats what's please pls plz lah leh ah ya ok okay price prices cost costs rate rates
charge fee fees instead case
berapa harga untuk yang dan pula pulak kalau jika pun juga macam mana bagaimana dengan bagi ke tu itu ini
எவ்வளவு என்ன விலை
""".split())
_ZH_FILLERS = ("多少钱", "多少", "价格", "价钱", "的话", "如果", "那么", "还有", "那", "呢", "的", "是", "吗", "要", "呀", "啊")
_WORD = re.compile(r"[\w\u0900-\u0dff'’-]+", re.UNICODE)  # Indic vowel signs are not \w
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TRAILING_PUNCT = re.compile(r"[\s?？!！.。,，]+$")
# A follow-up leaning on the previous question brings at most this many words of its own
# ("and with the principal?", "the 90 min one for members?").
_MAX_LEANING_WORDS = 4
_ACKNOWLEDGEMENT = re.compile(r"^(?:ok|okay|orh|oh|so|um|hmm|alright|好的|好)\b[\s,，]*", re.IGNORECASE)
# A number and what it counts: "90 min", "1 kg", "45分钟", "2 pax".
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*-?\s*([^\W\d_]+|[\u3400-\u9fff]{1,2})")

# When a question names the key type but none of the value types, a stated profile fact
# of that type fills it in (a price question from a customer whose property type we know).
# Which types those are is the business's own (``profile_slots`` in ``config.vocabulary``).
NO_PROFILE_SLOTS: Mapping[str, Sequence[str]] = {}


class HeuristicRewriter:
    """Offline rewriting of follow-ups by slot replacement (see the module docstring)."""

    name = "heuristic"

    def __init__(self, lexicon: SlotLexicon | None = None, *, max_words: int = 10, max_cjk_chars: int = 16,
                 profile_slots: Mapping[str, Sequence[str]] = NO_PROFILE_SLOTS) -> None:
        self._lexicon = lexicon or SlotLexicon()
        self._max_words = max_words
        self._max_cjk = max_cjk_chars
        self._profile_slots = dict(profile_slots)
        self._cues = sorted(_LEADING_CUES, key=len, reverse=True)

    async def rewrite(self, text: str, history: Sequence[Turn], language: str | None = None) -> str:
        return self.rewrite_now(text, previous_question(history))

    def rewrite_now(self, text: str, previous: str | None) -> str:
        """The rewrite itself, synchronous (pure string work)."""
        text = " ".join(text.split())
        if not previous or not text or not self._is_short(text):
            return text
        current_slots = self._lexicon.find(text)
        leftover = self._content_words(text, current_slots)
        cue = self._has_cue(text)
        referring = cue or bool(_REFERRING.search(text))
        previous_slots = self._lexicon.find(previous)
        if not leftover:
            if not current_slots:
                return text  # "and?", "ok": nothing to merge
            if not cue and not _leans_on(previous_slots, current_slots):
                return text  # a question naming all its own entities needs nothing from before
            return self._merge(previous, previous_slots, text, current_slots)
        if not referring:
            return text  # a new question in its own words
        missing = _missing_context(previous_slots, current_slots)
        if missing:
            return f"{_TRAILING_PUNCT.sub('', text)} ({', '.join(missing)})?"
        if not cue or len(leftover) > _MAX_LEANING_WORDS:
            return text  # "what is X and how much is it?": its own subject, the pronoun points inside it
        # No entity the business's vocabulary knows: lean on the previous question itself, with any
        # quantity the follow-up names put in place of the one asked before ("the 90 min one?").
        return f"{_TRAILING_PUNCT.sub('', swap_quantities(previous, text))} — {text}"

    def personalise(self, query: str, facts: Mapping[str, str]) -> str:
        """Add a remembered fact the question leaves open (a price question from a customer whose size we know)."""
        slots = self._lexicon.find(query)
        present = {slot.type for slot in slots}
        additions: list[str] = []
        for key_type, value_types in self._profile_slots.items():
            if key_type not in present:
                continue
            for value_type in value_types:
                if value_type not in present and facts.get(value_type):
                    additions.append(facts[value_type])
        if not additions:
            return query
        return f"{_TRAILING_PUNCT.sub('', query)} ({', '.join(additions)})?"

    # ------------------------------------------------------------ internals
    def _merge(self, previous: str, previous_slots: list[Slot], text: str, current_slots: list[Slot]) -> str:
        """Swap each entity of the follow-up into the previous question by type; append the rest."""
        by_type: dict[str, Slot] = {}
        for slot in previous_slots:
            by_type.setdefault(slot.type, slot)
        replacements: list[tuple[int, int, str]] = []
        appended: list[str] = []
        for slot in current_slots:
            target = by_type.pop(slot.type, None)
            if target is None:
                appended.append(with_article(text, slot)[1] if not _CJK.search(slot.surface) else slot.surface)
                continue
            start, _ = with_article(previous, target)
            phrase = with_article(text, slot)[1]
            if start == target.start:  # no article before the old entity: don't add one
                phrase = slot.surface
            replacements.append((start, target.end, phrase))
        merged = previous
        for start, end, phrase in sorted(replacements, reverse=True):
            merged = merged[:start] + phrase + merged[end:]
        if appended:
            merged = f"{_TRAILING_PUNCT.sub('', merged)} ({', '.join(appended)})?"
        return merged

    def _is_short(self, text: str) -> bool:
        cjk = len(_CJK.findall(text))
        if cjk:
            return cjk <= self._max_cjk
        return len(self._tokens(text)) <= self._max_words

    def _has_cue(self, text: str) -> bool:
        lowered = _ACKNOWLEDGEMENT.sub("", text.lower().strip())  # "ok what about …" leans on the last question too
        stripped = _TRAILING_PUNCT.sub("", lowered)
        if any(stripped.endswith(cue) for cue in _TRAILING_CUES):
            return True
        for cue in self._cues:
            if lowered.startswith(cue):
                rest = lowered[len(cue):]
                if _CJK.match(cue) or not rest or not (rest[0].isalnum() or rest[0] == "_"):
                    return True
        return False

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return [token.lower() for token in _WORD.findall(text)]

    def _content_words(self, text: str, slots: list[Slot]) -> list[str]:
        """What the message says besides entities, follow-up markers and filler."""
        remainder = text
        for slot in sorted(slots, key=lambda s: s.start, reverse=True):
            remainder = remainder[:slot.start] + " " + remainder[slot.end:]
        words = []
        for token in _WORD.findall(remainder):
            if _CJK.search(token):
                for filler in _ZH_FILLERS:
                    token = token.replace(filler, "")
                if token:
                    words.append(token)
            elif token.lower() not in _FILLERS and not _is_suffix_of_slot(token, text, slots):
                words.append(token.lower())
        return words


def swap_quantities(previous: str, text: str) -> str:
    """``previous`` with each quantity the follow-up names put in place of one of the same unit.

    "How much is a 60 min massage?" + "and the 90 min one?" -> "How much is a 90 min massage?";
    units match on their first three letters (min / mins / minutes), CJK units exactly.
    """
    merged = previous
    for number, unit in _QUANTITY.findall(text):
        key = unit.lower()[:3]
        for match in _QUANTITY.finditer(merged):
            if match.group(2).lower()[:3] == key and match.group(1) != number:
                merged = merged[:match.start(1)] + number + merged[match.end(1):]
                break
    return merged


def _is_suffix_of_slot(token: str, text: str, slots: list[Slot]) -> bool:
    """A Tamil case ending left behind by an entity matched inside a word (an entity, then "|வுக்கு")."""
    return any(text[slot.end:].startswith(token) for slot in slots)


def _leans_on(previous_slots: list[Slot], current_slots: list[Slot]) -> bool:
    """Without a follow-up marker, a bare entity ("weekend?") continues the previous question only
    if it swaps one of that question's entities and leaves another one to be inherited."""
    previous_types = {slot.type for slot in previous_slots}
    current_types = {slot.type for slot in current_slots}
    return bool(previous_types & current_types) and bool(previous_types - current_types)


def _missing_context(previous_slots: list[Slot], current_slots: list[Slot]) -> list[str]:
    present = {slot.type for slot in current_slots}
    missing: list[str] = []
    for slot in previous_slots:
        if slot.type not in present and slot.surface not in missing:
            missing.append(slot.surface)
            present.add(slot.type)
    return missing


def previous_question(history: Sequence[Turn]) -> str | None:
    for turn in reversed(history):
        if turn.role == "user" and turn.text.strip():
            return turn.text
    return None
