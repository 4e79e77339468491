"""Answer-quality evaluation on a labelled question set (format: ``evalsets/README.md``).

Every question goes through the real pipeline as a fresh customer (the caller
passes ``ask``, normally ``supportlah.conversation.ask_once`` over a built
container), so the figures are what a customer would get, whatever answerer is
configured. A follow-up question is asked after its ``context`` turn, as the
same customer.

What counts, per question:

* answered correctly — answerable, not escalated, and the reply contains every
  ``must_contain`` string (case-insensitive substring);
* citations — of the answerable questions answered without escalation: the share
  whose cited documents are all expected (⊆) and the share citing at least one
  expected document (∩);
* "don't know" — an unanswerable question that was escalated (handed to staff)
  instead of answered;
* false escalation — an answerable question that was escalated.

The same file also gives a retrieval view (:func:`retrieval_view`): document-level
relevance, where retrieving *any* expected document is a hit, because the facts
are deliberately repeated across documents (a price in the Markdown and the CSV).
"""
from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("en", "zh", "ms", "ta")
KINDS = ("keyword", "direct", "paraphrase", "cross_lingual", "followup", "unanswerable")

# (text, user) -> the dict ``ask_once`` returns: answer, escalate, reason, sources[{document, ...}], backend …
Ask = Callable[[str, str], Awaitable[dict]]


class EvalSetError(ValueError):
    """The labelled file is malformed; the message names the line."""


@dataclass(frozen=True)
class LabelledQuestion:
    id: str
    lang: str
    question: str
    answerable: bool
    expected_docs: tuple[str, ...]
    must_contain: tuple[str, ...]
    kind: str
    context: str | None = None


def load_questions(path: Path | str) -> list[LabelledQuestion]:
    """Read and check a labelled JSONL file; a bad line raises ``EvalSetError`` naming it."""
    source = Path(path)
    questions: list[LabelledQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source.name}:{number}"
        try:
            row = json.loads(line)
            question = LabelledQuestion(
                id=_text(row, "id"),
                lang=_text(row, "lang"),
                question=_text(row, "question"),
                answerable=_bool(row, "answerable"),
                expected_docs=_strings(row, "expected_docs"),
                must_contain=_strings(row, "must_contain"),
                kind=_text(row, "kind"),
                context=_text(row, "context") if row.get("context") is not None else None,
            )
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"{where}: not JSON ({exc.msg})") from exc
        except KeyError as exc:
            raise EvalSetError(f"{where}: missing field {exc.args[0]!r}") from exc
        except TypeError as exc:
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


# --- answers ---------------------------------------------------------------------


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Outcome:
    """What the pipeline did with one labelled question, and how that scores."""

    question: LabelledQuestion
    answer: str
    escalated: bool
    reason: str | None
    cited_docs: tuple[str, ...]
    missing: tuple[str, ...]  # must_contain strings absent from the answer
    backend: dict

    @property
    def answered(self) -> bool:
        return not self.escalated

    @property
    def correct(self) -> bool:
        return self.question.answerable and self.answered and not self.missing

    @property
    def citations_all_expected(self) -> bool:
        return bool(self.cited_docs) and set(self.cited_docs) <= set(self.question.expected_docs)

    @property
    def citations_any_expected(self) -> bool:
        return bool(set(self.cited_docs) & set(self.question.expected_docs))


def score_answer(question: LabelledQuestion, result: dict) -> Outcome:
    answer = str(result.get("answer") or "")
    folded = _fold(answer)
    cited = tuple(dict.fromkeys(s["document"] for s in result.get("sources") or []))
    return Outcome(
        question=question,
        answer=answer,
        escalated=bool(result.get("escalate")),
        reason=result.get("reason"),
        cited_docs=cited,
        missing=tuple(m for m in question.must_contain if _fold(m) not in folded),
        backend=dict(result.get("backend") or {}),
    )


async def ask_all(questions: Sequence[LabelledQuestion], ask: Ask, *, user_prefix: str) -> list[Outcome]:
    """Ask each question as a new customer, after its context turn if it has one; in file order."""
    outcomes = []
    for question in questions:
        user = f"{user_prefix}{question.id}"
        if question.context:
            await ask(question.context, user)
        outcomes.append(score_answer(question, await ask(question.question, user)))
    return outcomes


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarize_answers(outcomes: Sequence[Outcome]) -> dict:
    """Rates for one group of questions; a rate is None when its denominator is empty."""
    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    answered = [o for o in answerable if o.answered]
    return {
        "n": len(outcomes),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "answered_correctly": _rate(sum(o.correct for o in answerable), len(answerable)),
        "answered_wrong": _rate(sum(o.answered and not o.correct for o in answerable), len(answerable)),
        "false_escalation": _rate(sum(o.escalated for o in answerable), len(answerable)),
        "citations_all_expected": _rate(sum(o.citations_all_expected for o in answered), len(answered)),
        "citations_any_expected": _rate(sum(o.citations_any_expected for o in answered), len(answered)),
        "dont_know": _rate(sum(o.escalated for o in unanswerable), len(unanswerable)),
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
        "by_lang": _groups(outcomes, lambda o: o.question.lang, LANGUAGES),
        "by_kind": _groups(outcomes, lambda o: o.question.kind, KINDS),
        "questions": [
            {
                "id": o.question.id,
                "lang": o.question.lang,
                "kind": o.question.kind,
                "answerable": o.question.answerable,
                "correct": o.correct,
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
    """A follow-up is elliptical ("and for a condo?"); retrieval sees it with its context turn,
    as a standalone rewrite of it would read."""
    return f"{question.context} {question.question}" if question.context else question.question


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
