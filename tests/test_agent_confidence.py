"""The shipped confidence model, its features, the fitter and the dev set it was fitted on."""
import json
from collections import Counter

import numpy as np
import pytest

from config.settings import Settings

from agent.answer import Answer
from agent.calibration.fit import DEV_SET, MODEL_PATH, fit_logistic, is_correct, load_dev_set, operating_point
from agent.confidence import MODEL_FEATURES, ConfidenceModel, confidence_features
from config.types import Source
from rag.types import RetrievedChunk


@pytest.fixture(scope="module")
def model() -> ConfidenceModel:
    return ConfidenceModel.load()


def retrieved(chunk_id: str, dense: float | None, sparse: float | None, overlap: float = 0.5) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=chunk_id, document="doc.md", text="text", score=0.1, dense_score=dense, sparse_score=sparse,
        extra={"query_overlap": overlap},
    )


def answer(chunk_id: str, coverage: float, similarity: float | None) -> Answer:
    return Answer(
        text="quoted", language="en", sources=[Source("doc.md", chunk_id, 0.1, "quoted")], coverage=coverage,
        similarity=similarity,
    )


def test_features_from_retrieval_evidence() -> None:
    chunks = [retrieved("a", 0.88, 7.5, overlap=0.8), retrieved("b", 0.85, None), retrieved("c", None, 2.0)]
    features = confidence_features(chunks, answer("b", coverage=0.6, similarity=0.9))
    assert features["top_dense"] == pytest.approx(0.88)
    assert features["dense_margin"] == pytest.approx(0.03)
    assert features["sparse_hit"] == 0.0  # the quoted chunk "b" was not found by BM25
    assert features["query_overlap"] == pytest.approx(0.8)
    assert (features["coverage"], features["similarity"], features["rerank"]) == (0.6, 0.9, 0.0)
    assert confidence_features(chunks, answer("a", 0.6, None))["similarity"] == pytest.approx(0.88)


def test_shipped_model_is_a_probability_that_rises_with_evidence(model: ConfidenceModel) -> None:
    assert set(model.weights) == set(MODEL_FEATURES)
    assert model.weights["coverage"] > 0 and model.weights["similarity"] > 0
    base = {name: model.means[name] for name in MODEL_FEATURES}
    weak = model.predict({**base, "coverage": 0.0, "similarity": 0.80})
    strong = model.predict({**base, "coverage": 1.0, "similarity": 0.92})
    assert 0.0 <= weak < 0.3 < 0.9 < strong <= 1.0


def test_shipped_model_records_how_it_does_on_businesses_it_was_not_fitted_on(model: ConfidenceModel) -> None:
    """``supportlah calibrate`` fits on several businesses and scores each with a model fitted on the
    others; at the default threshold no held-out business gets more than one wrong answer in ten, and
    no question its documents do not answer is answered."""
    held_out = model.metadata["leave_one_business_out"][f"{Settings().confidence_threshold:.2f}"]
    assert len(model.metadata["fitted_on"]) >= 3 and set(held_out) == set(model.metadata["fitted_on"])
    for business, point in held_out.items():
        assert point["wrong"] <= 0.10, business
        assert point["correct"] >= 0.35, business
        assert point["negatives_sent"] == 0, business
    assert json.loads(MODEL_PATH.read_text(encoding="utf-8"))["bias"] == model.bias


def test_round_trip_through_json(model: ConfidenceModel, tmp_path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model.to_json()), encoding="utf-8")
    again = ConfidenceModel.load(path)
    sample = {name: model.means[name] + 0.01 for name in MODEL_FEATURES}
    assert again.predict(sample) == pytest.approx(model.predict(sample))


def test_fitter_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    true_weights, true_bias = np.array([2.0, -1.0]), 0.5
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x @ true_weights + true_bias)))).astype(float)
    weights, bias = fit_logistic(x, y, l2=1e-6)
    assert weights == pytest.approx(true_weights, abs=0.2)
    assert bias == pytest.approx(true_bias, abs=0.15)


def test_operating_point_counts() -> None:
    probabilities = np.array([0.95, 0.8, 0.75, 0.3, 0.9])
    labels = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    answerable = np.array([True, True, True, True, False])
    point = operating_point(probabilities, labels, answerable, 0.7)
    assert point == {
        "threshold": 0.7, "answered": 4, "precision": 0.5, "recall_of_correct": 0.667,
        "recall_of_answerable": 0.5, "unanswerable_answered": 1,
    }


def test_labels_need_every_expected_fact() -> None:
    question = {"answerable": True, "expect": [["$80", "80.00"], ["HDB"]]}
    assert is_correct(question, "CW-HDB; HDB flat; $80")
    assert not is_correct(question, "CW-CONDO; Condominium; $90")
    assert not is_correct({"answerable": False, "expect": []}, "anything at all")


def test_dev_set_is_big_and_varied_enough() -> None:
    rows = load_dev_set(DEV_SET)
    assert len(rows) >= 60
    assert len({r["id"] for r in rows}) == len(rows)
    assert sum(not r["answerable"] for r in rows) >= 25
    answerable_languages = Counter(r["lang"] for r in rows if r["answerable"])
    assert all(answerable_languages[lang] >= 5 for lang in ("en", "zh", "ms", "ta"))
    assert {"direct", "paraphrase", "keyword", "near_miss", "general"} <= {r["kind"] for r in rows}
    assert all(r["expect"] for r in rows if r["answerable"])
