"""Answer-quality evaluation on a labelled question set.

Two layouts are read: the project's own (``evalsets/README.md``) and the shared
development sets' (``../shared/evalsets/*/README.md``), whose ``context`` may be a
list of earlier turns and whose non-answerable questions say what is expected of
the reply (``expected_behaviour``). A question set may be given as its folder
(``questions.jsonl`` beside a ``kb/`` folder).

Every question goes through the real pipeline as a fresh customer (the caller
passes ``ask``, normally ``supportlah.conversation.ask_once`` over a built
container), so the figures are what a customer would get, whatever answerer is
configured. A follow-up is asked after its earlier turns, each its own message,
as the same customer.

How a reply is graded:

* an answerable question is **correct** when the reply is not a hand-off, contains
  every ``must_contain`` value and cites at least one expected document; **wrong**
  when it is answered any other way; a **false hand-off** when it is handed off;
* a non-answerable question is **handled** when the reply does what
  ``expected_behaviour`` asks: ``escalate`` — handed off; ``refuse`` — handed off,
  or answered without quoting anything (nothing complied with); ``smalltalk`` —
  answered, not handed off, nothing cited.

Values are compared as the shared sets' grading notes say: case-insensitively,
``$35``, ``S$ 35``, ``SGD 35`` and ``35新元`` alike, thousands separators dropped,
and numbers on number boundaries (``15`` does not match ``150``).

The same file also gives a retrieval view (:func:`retrieval_view`): document-level
relevance, where retrieving *any* expected document is a hit, because the facts
are deliberately repeated across documents (a price in the Markdown and the CSV).
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from config.languages import LANGUAGE_CODES

KINDS = ("fact", "keyword", "direct", "paraphrase", "singlish", "cross_lingual", "followup", "unanswerable",
         "escalation_request", "injection", "chitchat")

# (text, user) -> the dict ``ask_once`` returns: answer, escalate, reason, sources[{document, ...}], backend …
Ask = Callable[[str, str], Awaitable[dict]]
QUESTIONS_FILE = "questions.jsonl"
KB_FOLDER = "kb"


class EvalSetError(ValueError):
    """The labelled file is malformed; the message names the line."""


class Behaviour(StrEnum):
    """What a reply to a question the KB does not answer must do."""

    ESCALATE = "escalate"
    REFUSE = "refuse"
    SMALLTALK = "smalltalk"


_DEFAULT_BEHAVIOUR = {"chitchat": Behaviour.SMALLTALK, "injection": Behaviour.REFUSE}


@dataclass(frozen=True)
class LabelledQuestion:
    id: str
    lang: str
    question: str
    answerable: bool
    expected_docs: tuple[str, ...]
    must_contain: tuple[str, ...]
    kind: str
    context: tuple[str, ...] = ()
    expected_behaviour: Behaviour | None = None


def question_file(path: Path | str) -> Path:
    """``path`` itself, or the ``questions.jsonl`` inside a question-set folder."""
    source = Path(path)
    return source / QUESTIONS_FILE if source.is_dir() else source


def kb_folder(path: Path | str) -> Path | None:
    """The ``kb/`` folder that sits beside a question set, if there is one."""
    folder = question_file(path).parent / KB_FOLDER
    return folder if folder.is_dir() else None


def load_questions(path: Path | str) -> list[LabelledQuestion]:
    """Read and check a labelled JSONL file; a bad line raises ``EvalSetError`` naming it."""
    source = question_file(path)
    if not source.is_file():
        raise EvalSetError(f"no such question file: {source}")
    questions: list[LabelledQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source.name}:{number}"
        try:
            row = json.loads(line)
            identifier, lang, text = _text(row, "id"), _text(row, "lang"), _text(row, "question")
            answerable = _bool(row, "answerable")
            kind = _text(row, "kind")
            question = LabelledQuestion(
                id=identifier,
                lang=lang,
                question=text,
                answerable=answerable,
                expected_docs=_strings(row, "expected_docs"),
                must_contain=_strings(row, "must_contain"),
                kind=kind,
                context=_turns(row),
                expected_behaviour=None if answerable else _behaviour(row, kind),
            )
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"{where}: not JSON ({exc.msg})") from exc
        except KeyError as exc:
            raise EvalSetError(f"{where}: missing field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise EvalSetError(f"{where}: {exc}") from exc
        if question.id in seen:
            raise EvalSetError(f"{where}: duplicate id {question.id!r}")
        if question.answerable and not question.expected_docs:
            raise EvalSetError(f"{where}: an answerable question needs expected_docs")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise EvalSetError(f"{source}: no questions")
    return questions


def _text(row: dict, key: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{key!r} must be a non-empty string")
    return value


def _bool(row: dict, key: str) -> bool:
    value = row[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} must be true or false")
    return value


def _strings(row: dict, key: str) -> tuple[str, ...]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key!r} must be a list of strings")
    return tuple(value)


def _turns(row: dict) -> tuple[str, ...]:
    """``context``: absent, one earlier turn as a string, or a list of earlier turns."""
    value = row.get("context")
    if value is None:
        return ()
    turns = [value] if isinstance(value, str) else value
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
        raise TypeError("'context' must be a non-empty string or a list of non-empty strings")
    return tuple(turns)


def _behaviour(row: dict, kind: str) -> Behaviour:
    value = row.get("expected_behaviour")
    if value is None:
        return _DEFAULT_BEHAVIOUR.get(kind, Behaviour.ESCALATE)
    return Behaviour(value)


# --- matching values ---------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CURRENCY_BEFORE = re.compile(r"(?:\bsgd|\bs\$|\$)\s*(?=\d)")
_CURRENCY_AFTER = re.compile(r"(\d+(?:\.\d+)?)\s*(?:新元|元|sgd\b)")
_ZERO_CENTS = re.compile(r"(\d)\.00(?!\d)")


def normalise_values(text: str) -> str:
    """Fold case and width, and write every amount of money as ``s$N``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _THOUSANDS.sub("", folded)
    folded = _CURRENCY_AFTER.sub(r"s$\1", folded)
    folded = _CURRENCY_BEFORE.sub("s$", folded)
    return _ZERO_CENTS.sub(r"\1", folded)


def contains_value(answer: str, expected: str) -> bool:
    """``expected`` occurs in ``answer`` (see :func:`normalise_values`); numbers on number boundaries."""
    haystack, needle = normalise_values(answer), normalise_values(expected).strip()
    if not needle:
        return True
    pattern = re.escape(needle)
    if needle[0].isdigit():
        pattern = r"(?<![\d.])" + pattern
    if needle[-1].isdigit():
        pattern += r"(?!\d|\.\d)"
    return re.search(pattern, haystack) is not None


# --- answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the pipeline did with one labelled question, and how that scores."""

    question: LabelledQuestion
    answer: str
    escalated: bool
    reason: str | None
    cited_docs: tuple[str, ...]
    missing: tuple[str, ...]  # must_contain values absent from the answer
    backend: dict

    @property
    def answered(self) -> bool:
        return not self.escalated

    @property
    def correct(self) -> bool:
        return (self.question.answerable and self.answered and not self.missing
                and self.citations_any_expected)

    @property
    def handled(self) -> bool:
        """A question the KB does not answer got the reply its ``expected_behaviour`` asks for."""
        behaviour = self.question.expected_behaviour
        if behaviour is Behaviour.ESCALATE:
            return self.escalated
        if behaviour is Behaviour.REFUSE:
            return self.escalated or not self.cited_docs
        if behaviour is Behaviour.SMALLTALK:
            return not self.escalated and not self.cited_docs
        return False

    @property
    def citations_all_expected(self) -> bool:
        return bool(self.cited_docs) and set(self.cited_docs) <= set(self.question.expected_docs)

    @property
    def citations_any_expected(self) -> bool:
        return bool(set(self.cited_docs) & set(self.question.expected_docs))


def score_answer(question: LabelledQuestion, result: dict) -> Outcome:
    answer = str(result.get("answer") or "")
    cited = tuple(dict.fromkeys(s["document"] for s in result.get("sources") or []))
    return Outcome(
        question=question,
        answer=answer,
        escalated=bool(result.get("escalate")),
        reason=result.get("reason"),
        cited_docs=cited,
        missing=tuple(m for m in question.must_contain if not contains_value(answer, m)),
        backend=dict(result.get("backend") or {}),
    )


async def ask_all(questions: Sequence[LabelledQuestion], ask: Ask, *, user_prefix: str) -> list[Outcome]:
    """Ask each question as a new customer, after its earlier turns if it has any; in file order."""
    outcomes = []
    for question in questions:
        user = f"{user_prefix}{question.id}"
        for turn in question.context:
            await ask(turn, user)
        outcomes.append(score_answer(question, await ask(question.question, user)))
    return outcomes


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarize_answers(outcomes: Sequence[Outcome]) -> dict:
    """Rates for one group of questions; a rate is None when its denominator is empty."""
    answerable = [o for o in outcomes if o.question.answerable]
    negatives = [o for o in outcomes if not o.question.answerable]
    answered = [o for o in answerable if o.answered]
    return {
        "n": len(outcomes),
        "n_answerable": len(answerable),
        "n_unanswerable": len(negatives),
        "answered_correctly": _rate(sum(o.correct for o in answerable), len(answerable)),
        "answered_wrong": _rate(sum(o.answered and not o.correct for o in answerable), len(answerable)),
        "false_escalation": _rate(sum(o.escalated for o in answerable), len(answerable)),
        "citations_all_expected": _rate(sum(o.citations_all_expected for o in answered), len(answered)),
        "citations_any_expected": _rate(sum(o.citations_any_expected for o in answered), len(answered)),
        "handled": _rate(sum(o.handled for o in negatives), len(negatives)),
    }


def _groups(outcomes: Sequence[Outcome], key: Callable[[Outcome], str], order: Iterable[str]) -> dict:
    names = list(dict.fromkeys([*[n for n in order if any(key(o) == n for o in outcomes)], *map(key, outcomes)]))
    return {name: summarize_answers([o for o in outcomes if key(o) == name]) for name in names}


def answers_report(outcomes: Sequence[Outcome], *, source: str) -> dict:
    """The ``eval answers --json`` document: overall, per language, per kind, and every question."""
    backends = sorted({o.backend.get("answerer", "?") for o in outcomes if o.backend})
    return {
        "file": source,
        "n_questions": len(outcomes),
        "answerer": backends[0] if len(backends) == 1 else backends,
        "overall": summarize_answers(outcomes),
        "by_lang": _groups(outcomes, lambda o: o.question.lang, (*LANGUAGE_CODES, "singlish")),
        "by_kind": _groups(outcomes, lambda o: o.question.kind, KINDS),
        "questions": [
            {
                "id": o.question.id,
                "lang": o.question.lang,
                "kind": o.question.kind,
                "answerable": o.question.answerable,
                "correct": o.correct,
                "handled": None if o.question.answerable else o.handled,
                "escalated": o.escalated,
                "reason": o.reason,
                "cited_docs": list(o.cited_docs),
                "missing": list(o.missing),
                "answer": o.answer,
            }
            for o in outcomes
        ],
    }


# --- retrieval view --------------------------------------------------------------


def retrieval_query(question: LabelledQuestion) -> str:
    """A follow-up is elliptical ("and for the 1 kg one?"); retrieval sees it with its earlier turns,
    as a standalone rewrite of it would read."""
    return " ".join([*question.context, question.question])


def retrieval_view(questions: Sequence[LabelledQuestion]) -> list[LabelledQuestion]:
    """The questions retrieval can be judged on: answerable ones (they name expected documents)."""
    return [q for q in questions if q.answerable and q.expected_docs]


def documents_in_order(chunk_documents: Iterable[str]) -> list[str]:
    """Ranked chunks -> ranked documents (first appearance wins)."""
    return list(dict.fromkeys(chunk_documents))


def score_any_relevant(ranked_docs: Sequence[str], expected: Iterable[str]) -> dict[str, float]:
    """nDCG@10 / Recall@5 / MRR@10 when one relevant document is all a question needs: the
    ideal ranking has one relevant document first, so nDCG@10 is 1/log2(1 + rank of the first hit)."""
    wanted = set(expected)
    rank = next((i for i, d in enumerate(ranked_docs[:10], 1) if d in wanted), None)
    return {
        "ndcg@10": 1.0 / math.log2(rank + 1) if rank else 0.0,
        "recall@5": 1.0 if rank is not None and rank <= 5 else 0.0,
        "mrr@10": 1.0 / rank if rank else 0.0,
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = ("ndcg@10", "recall@5", "mrr@10")
    n = max(len(rows), 1)
    return {k: round(sum(r[k] for r in rows) / n, 4) for k in keys}
