"""``supportlah calibrate``: fit the answer-confidence model on several businesses at once.

    supportlah calibrate evalsets/bakery ../shared/evalsets/physio-clinic evalsets/sample-kb [--out FILE]

A confidence fitted on one business's questions learns that business (the old model did: it
was fitted on the sample KB only, and on new knowledge bases it let one answer in five through
wrong). So every question set — a folder with ``questions.jsonl`` and ``kb/`` (and, if the
business has one, ``vocabulary.json``) — is ingested into its own throwaway embedded container
and asked through the real pipeline, with a recording confidence that always says "send": each
reply is then the draft the agent would give, and its label is whether that draft is right
(it contains every expected value and cites an expected document). Questions the KB does not
answer are labelled 0 whenever they reach a draft.

The model is checked **leave one business out**: each set is scored by a model fitted on the
others only, which is what an owner with new documents meets. The threshold is the lowest
that keeps wrong answers at or under ``--max-wrong`` of the answerable questions in every
held-out business (a wrong answer costs more than a hand-off); the report lists, per business,
the share answered correctly, wrong and handed off at that threshold.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.calibration.logistic import L2, fit_standardised, predict
from agent.confidence import MODEL_FEATURES, ConfidenceModel
from agent.evaluation import LabelledQuestion, kb_folder, load_questions, question_file, score_answer
from config.settings import Settings
from config.vocabulary import VOCABULARY_FILE

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.3, 0.96, 0.05))


class RecordingConfidence:
    """Says "send" to every draft and keeps the evidence it was shown, in order."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def predict(self, features: dict[str, float]) -> float:
        self.seen.append(dict(features))
        return 1.0


@dataclass(frozen=True)
class Observation:
    business: str
    question: LabelledQuestion
    features: dict[str, float]
    correct: bool


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("calibrate", help="fit the answer-confidence model on several question sets")
    parser.add_argument("sets", type=Path, nargs="+", help="question-set folders (questions.jsonl + kb/)")
    parser.add_argument("--out", type=Path, help="write the model here (default: print the report only)")
    parser.add_argument("--observations", type=Path, metavar="FILE",
                        help="keep the drafts' evidence here; a later run with the same file refits without asking again")
    parser.add_argument("--max-wrong", type=float, default=0.05,
                        help="highest share of wrong answers allowed in any held-out business (default 0.05)")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    observations: list[Observation] = []
    cache = args.observations
    if cache is not None and cache.is_file():
        observations = _load(cache, args.sets)
    else:
        for folder in args.sets:
            observations += await observe(settings, folder)
        if cache is not None:
            cache.write_text(json.dumps([{"business": o.business, "id": o.question.id, "features": o.features,
                                          "correct": o.correct} for o in observations]), encoding="utf-8")
    model, report = fit(observations, max_wrong=args.max_wrong)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


async def observe(settings: Settings, folder: Path) -> list[Observation]:
    """Every question of one set through the real pipeline; the drafts and their evidence."""
    from supportlah.container import build
    from supportlah.conversation import ask_once
    from supportlah.ingest_cli import run_ingest

    questions = load_questions(folder)
    kb = kb_folder(folder)
    if kb is None:
        raise ValueError(f"{folder}: no kb/ folder beside {question_file(folder).name}")
    vocabulary = kb.parent / VOCABULARY_FILE
    business = question_file(folder).parent.name
    recorder = RecordingConfidence()
    found: list[Observation] = []
    with tempfile.TemporaryDirectory(prefix="supportlah-calibrate-") as tmp:
        isolated = settings.model_copy(update={
            "data_dir": Path(tmp), "database_url": None, "redis_url": None, "qdrant_url": None,
            "telegram_bot_token": None, "twilio_account_sid": None, "twilio_auth_token": None,
            "llm_base_url": None, "vocabulary_file": vocabulary if vocabulary.is_file() else None,
        })
        container = await build(isolated, start_queue=False, confidence=recorder)
        try:
            await run_ingest(container, [kb], show_progress=False)
            run_id = uuid.uuid4().hex[:6]
            for question in questions:
                user = f"calibrate-{run_id}-{question.id}"
                for turn in question.context:
                    await ask_once(container, turn, user=user)
                before = len(recorder.seen)
                result = await ask_once(container, question.question, user=user)
                if len(recorder.seen) == before:
                    continue  # small talk, a request for a person: no draft was scored
                outcome = score_answer(question, {**result, "escalate": False})
                found.append(Observation(business, question, recorder.seen[-1],
                                         question.answerable and outcome.correct))
        finally:
            await container.close()
    return found


def _load(cache: Path, sets: list[Path]) -> list[Observation]:
    """Observations kept by an earlier run, joined with the question sets they came from."""
    questions = {(question_file(f).parent.name, q.id): q for f in sets for q in load_questions(f)}
    rows = json.loads(cache.read_text(encoding="utf-8"))
    return [Observation(r["business"], questions[(r["business"], r["id"])], r["features"], r["correct"])
            for r in rows if (r["business"], r["id"]) in questions]


def _matrix(observations: list[Observation]) -> np.ndarray:
    return np.array([[o.features[n] for n in MODEL_FEATURES] for o in observations], dtype=float)


def fit(observations: list[Observation], *, max_wrong: float) -> tuple[ConfidenceModel, dict]:
    businesses = list(dict.fromkeys(o.business for o in observations))
    labels = np.array([1.0 if o.correct else 0.0 for o in observations])
    matrix = _matrix(observations)
    held_out = np.zeros(len(observations))
    for business in businesses:  # leave one business out
        mine = np.array([o.business == business for o in observations])
        if mine.all():
            raise ValueError("calibration needs at least two businesses (question sets)")
        weights, bias, means, scales = fit_standardised(matrix[~mine], labels[~mine])
        held_out[mine] = predict(matrix[mine], weights, bias, means, scales)
    per_threshold = {t: {b: _operating_point(observations, held_out, b, t) for b in businesses} for t in THRESHOLDS}
    safe = [t for t in THRESHOLDS if all(p["wrong"] <= max_wrong for p in per_threshold[t].values())]
    threshold = safe[0] if safe else THRESHOLDS[-1]
    weights, bias, means, scales = fit_standardised(matrix, labels)
    report = {
        "businesses": businesses,
        "observations": len(observations),
        "correct_drafts": int(labels.sum()),
        "threshold": threshold,
        "max_wrong": max_wrong,
        "leave_one_business_out": {f"{t:.2f}": per_threshold[t] for t in THRESHOLDS},
    }
    model = ConfidenceModel(
        weights={n: round(float(w), 6) for n, w in zip(MODEL_FEATURES, weights)},
        means={n: round(float(m), 6) for n, m in zip(MODEL_FEATURES, means)},
        scales={n: round(float(s), 6) for n, s in zip(MODEL_FEATURES, scales)},
        bias=round(bias, 6),
        metadata={"fitted_on": businesses, "observations": len(observations), "l2": L2,
                  "lowest_threshold_within_max_wrong": threshold, "max_wrong": max_wrong,
                  "leave_one_business_out": report["leave_one_business_out"]},
    )
    return model, report


def _operating_point(observations: list[Observation], held_out: np.ndarray, business: str, threshold: float) -> dict:
    """Shares of the business's answerable questions answered correctly / wrongly at ``threshold``,
    and how many of its drafted negatives would have been sent."""
    rows = [(o, p) for o, p in zip(observations, held_out) if o.business == business]
    answerable = [(o, p) for o, p in rows if o.question.answerable]
    n = max(len(answerable), 1)
    return {
        "correct": round(sum(o.correct and p >= threshold for o, p in answerable) / n, 3),
        "wrong": round(sum((not o.correct) and p >= threshold for o, p in answerable) / n, 3),
        "negatives_sent": int(sum(p >= threshold for o, p in rows if not o.question.answerable)),
        "drafted": len(rows),
    }
