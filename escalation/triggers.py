"""Pure rules: is the customer unhappy with the bot, and how urgent is their ticket.

Unsatisfied: every 👎 on an answer and every repeat of the previous question is a
signal of dissatisfaction. Two signals in a row (two 👎, a 👎 then the same question
again, the same question three times) hand the conversation to staff with reason
``unsatisfied``, so a customer is never given the same unhelpful answer again.

Priority: an urgent word makes a ticket urgent; a VIP, a customer who needed staff
recently, or a complaint-like reason makes it high; everything else is normal.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from config.types import HandoffReason
from escalation.models import Priority

SIGNALS_TO_ESCALATE = 2
REPEAT_SIMILARITY = 0.85
_CJK_OR_TAMIL = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")
HIGH_PRIORITY_REASONS = frozenset({HandoffReason.SENSITIVE_TOPIC, HandoffReason.UNSATISFIED,
                                   HandoffReason.SYSTEM_ERROR})


@dataclass(frozen=True)
class CustomerEvent:
    """One customer message as the unsatisfied rule sees it."""

    kind: str  # "question" | "down" | "up"
    text: str = ""
    rated_message_id: str = ""  # for "down"/"up": the message whose answer was rated


def normalize_question(text: str) -> str:
    kept = "".join(ch if unicodedata.category(ch)[0] in "LN" else " " for ch in text.casefold())
    return " ".join(kept.split())


def repeats(question: str, previous: str) -> bool:
    """The same question again, allowing small rewording and typos."""
    a, b = normalize_question(question), normalize_question(previous)
    minimum = 3 if _CJK_OR_TAMIL.search(a) else 6
    if len(a) < minimum or len(b) < minimum:
        return False
    return a == b or SequenceMatcher(None, a, b).ratio() >= REPEAT_SIMILARITY


def unsatisfied(events: Sequence[CustomerEvent]) -> bool:
    """True when the last event completes a run of two dissatisfaction signals.

    Signals: a 👎 (once per rated answer) and a repeat of the previous question. A 👍
    ends the run, and so does moving on to a different question after an answer that
    was not rated down (the customer was apparently content with it).
    """
    streak = 0
    last_question: str | None = None
    last_answer_rated_down = False
    counted_ratings: set[str] = set()
    signal_now = False
    for event in events:
        signal_now = False
        if event.kind == "question":
            if last_question is not None and repeats(event.text, last_question):
                streak, signal_now = streak + 1, True
            elif not last_answer_rated_down:
                streak, counted_ratings = 0, set()
            last_question, last_answer_rated_down = event.text, False
        elif event.kind == "down" and event.rated_message_id not in counted_ratings:
            counted_ratings.add(event.rated_message_id)
            streak, signal_now, last_answer_rated_down = streak + 1, True, True
        elif event.kind == "up":
            streak, counted_ratings, last_answer_rated_down = 0, set(), False
    return signal_now and streak >= SIGNALS_TO_ESCALATE


def find_term(text: str, terms: Iterable[str]) -> str | None:
    """The first term found: whole words for Latin script, substrings for Chinese and Tamil."""
    lowered = " ".join(text.casefold().split())
    for term in terms:
        term = term.strip().casefold()
        if not term:
            continue
        if _CJK_OR_TAMIL.search(term):
            if term in lowered:
                return term
        else:
            words = r"\s+".join(re.escape(part) for part in term.split())
            if re.search(rf"\b{words}\b", lowered):
                return term
    return None


def priority_for(text: str, reason: str, *, urgent_terms: Iterable[str], vip: bool,
                 repeat_contact: bool) -> tuple[str, list[str]]:
    """(priority, why) — ``why`` is shown to staff on the card."""
    why: list[str] = []
    urgent = find_term(text, urgent_terms)
    if urgent:
        why.append(f"urgent word “{urgent}”")
    if vip:
        why.append("VIP customer")
    if repeat_contact:
        why.append("contacted us recently")
    if reason in HIGH_PRIORITY_REASONS:
        why.append(reason.replace("_", " "))
    if urgent:
        return Priority.URGENT, why
    return (Priority.HIGH if why else Priority.NORMAL), why
