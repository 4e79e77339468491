"""Retrieval-scale benchmark: hybrid query latency at 1k, 10k and 100k chunks.

The corpus is synthetic so 100k chunks take seconds, not hours of embedding: random
unit vectors for the dense arm, and for the sparse arm BM25 vectors of synthetic
"documents" drawn from a Zipf-distributed vocabulary of made-up words. Queries are
words of a random document (so the sparse arm finds real matches, through the real
query tokenizer) plus a noisy copy of its vector.

Each query is a full ``HybridRetriever.search`` (dense + sparse in parallel, the
query-term overlap from the sparse hits' stored terms, weighted RRF and the local
blend) with the query vector supplied up front, so the figures are the index's cost,
not the e5 model's. Engines:

* ``rag.edge_index.EdgeIndex`` (qdrant-edge, embedded; optimized after loading, as
  ingestion does);
* qdrant-client local mode (``bench.qdrant_local``, same schema), a pure-Python
  engine; its queries are bounded by time because it scans every point.

    python -m bench.retrieval_scale [--sizes 1000 10000 100000] [--queries 200]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import (
    latency_summary,
    machine,
    pyplot,
    run_benchmark,
    save_plot,
    table,
)
from rag.sparse import BM25SparseEncoder, SparseVec, term_id
from rag.types import ChunkRecord

NAME = "retrieval_scale"
DIM = 384
VOCABULARY = 30_000
DOC_WORDS = 80
QUERY_WORDS = 6


def _word(n: int) -> str:
    letters = []
    for _ in range(4):
        n, r = divmod(n, 26)
        letters.append(chr(ord("a") + r))
    return "z" + "".join(letters)  # "zaaaa": letters only, never a stopword, one token each


class SyntheticCorpus:
    def __init__(self, size: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        encoder = BM25SparseEncoder()
        self.words = [_word(n) for n in range(VOCABULARY)]
        ids = np.array([term_id(w) for w in self.words], dtype=np.int64)
        dense = rng.standard_normal((size, DIM)).astype(np.float32)
        self.dense = dense / np.linalg.norm(dense, axis=1, keepdims=True)
        ranks = np.minimum(rng.zipf(1.15, size=(size, DOC_WORDS)), VOCABULARY) - 1
        norm = encoder.k1 * (1.0 - encoder.b + encoder.b * DOC_WORDS / encoder.avg_len)
        self.doc_words: list[np.ndarray] = []
        self.sparse: list[SparseVec] = []
        for row in ranks:
            terms, tf = np.unique(row, return_counts=True)
            self.doc_words.append(terms)
            weights = tf * (encoder.k1 + 1.0) / (tf + norm)
            self.sparse.append(SparseVec.from_weights(dict(zip(ids[terms].tolist(), weights.tolist()))))
        self.records = [ChunkRecord(chunk_id=f"doc{i // 8}:{i % 8}", document=f"doc{i // 8}.md",
                                    document_id=f"doc{i // 8}", text=" ".join(self.words[t] for t in row[:40]),
                                    position=i % 8) for i, row in enumerate(ranks)]
        self._rng = rng

    def queries(self, n: int) -> list[tuple[str, np.ndarray]]:
        out = []
        for _ in range(n):
            doc = int(self._rng.integers(len(self.records)))
            terms = self._rng.choice(self.doc_words[doc], size=min(QUERY_WORDS, len(self.doc_words[doc])), replace=False)
            vector = self.dense[doc] + 0.6 * self._rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
            out.append((" ".join(self.words[t] for t in terms), vector / np.linalg.norm(vector)))
        return out


class FixedQueryVectors:
    """Embedder whose query vectors are given up front (the benchmark measures the index, not e5)."""

    name = "synthetic"
    dim = DIM

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self._vectors = vectors

    async def embed_query(self, text: str) -> np.ndarray:
        return self._vectors[text]


async def _measure(engine: str, corpus: SyntheticCorpus, queries: list[tuple[str, np.ndarray]], workdir: Path,
                   budget_seconds: float) -> dict:
    from rag.edge_index import EdgeIndex
    from rag.retrieval import HybridRetriever

    if engine == "edge":
        index = EdgeIndex(workdir / f"edge-{len(corpus.records)}", dim=DIM)
    else:
        from bench.qdrant_local import QdrantLocalIndex

        index = QdrantLocalIndex(":memory:", dim=DIM)
    try:
        started = time.perf_counter()
        await index.upsert(corpus.records, corpus.dense, corpus.sparse)
        await index.optimize()
        build_seconds = time.perf_counter() - started
        retriever = HybridRetriever(FixedQueryVectors(dict(queries)), index)
        await retriever.search(queries[0][0], k=5)  # first query opens files / warms caches
        latencies: list[float] = []
        deadline = time.perf_counter() + budget_seconds
        for text, _ in queries:
            t0 = time.perf_counter()
            hits = await retriever.search(text, k=5)
            latencies.append(time.perf_counter() - t0)
            if not hits:
                raise RuntimeError(f"{engine}: a query found nothing")
            if time.perf_counter() > deadline and len(latencies) >= 3:
                break
        parts = await _parts(index, queries[:50]) if engine == "edge" else None
    finally:
        await index.close()
    return {"build_seconds": round(build_seconds, 1), "queries_run": len(latencies), **latency_summary(latencies),
            **({"parts_p50_ms": parts} if parts else {})}


async def _parts(index, queries: list[tuple[str, np.ndarray]]) -> dict:  # noqa: ANN001
    """The index calls one hybrid query makes, timed one by one (p50 ms): dense top 50, sparse top 50 (its
    hits carry their stored term ids), and the overlap weight computed from those ids."""
    from rag.retrieval import query_overlap

    encoder = BM25SparseEncoder()
    dense, sparse, lookup = [], [], []
    for text, vector in queries:
        query_vec = encoder.encode_query(text)
        t0 = time.perf_counter()
        await index.search_dense(vector, 50)
        t1 = time.perf_counter()
        hits = await index.search_sparse(query_vec, 50)
        t2 = time.perf_counter()
        query_overlap(set(query_vec.indices), [h.terms for h in hits])
        t3 = time.perf_counter()
        dense.append(t1 - t0)
        sparse.append(t2 - t1)
        lookup.append(t3 - t2)
    return {"dense_top50": latency_summary(dense)["p50_ms"], "sparse_top50": latency_summary(sparse)["p50_ms"],
            "overlap_weight": latency_summary(lookup)["p50_ms"]}


async def run(args: argparse.Namespace) -> dict:
    info = machine()
    results: dict[str, dict[str, dict]] = {"edge": {}, "qdrant-client local": {}}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for size in args.sizes:
            corpus = SyntheticCorpus(size)
            queries = corpus.queries(args.queries)
            results["edge"][str(size)] = await _measure("edge", corpus, queries, Path(tmp), args.budget)
            print(f"  edge {size}: {results['edge'][str(size)]}", flush=True)
            if size <= args.qdrant_local_max:
                local = await _measure("local", corpus, queries, Path(tmp), args.budget)
            else:
                local = {"skipped": f"above --qdrant-local-max {args.qdrant_local_max}"}
            results["qdrant-client local"][str(size)] = local
            print(f"  qdrant-client local {size}: {local}", flush=True)
    return {
        "name": NAME,
        "machine": info,
        "setup": {"sizes": args.sizes, "dim": DIM, "vocabulary": VOCABULARY, "words_per_chunk": DOC_WORDS,
                  "query_words": QUERY_WORDS, "queries": args.queries, "time_budget_seconds": args.budget,
                  "query": "HybridRetriever.search(k=5): dense + sparse (50 candidates each; sparse hits carry "
                           "their stored terms), query-term overlap, weighted RRF, local blend; query vector "
                           "precomputed"},
        "targets": {"p50_ms_at_100k": 10.0},
        "results": results,
    }


def report(data: dict) -> str:
    rows = []
    for engine, sizes in data["results"].items():
        for size, r in sizes.items():
            if "skipped" in r:
                rows.append([engine, int(size), None, None, None, None, r["skipped"]])
            else:
                rows.append([engine, int(size), r["build_seconds"], r["queries_run"], r["p50_ms"], r["p99_ms"], ""])
    return table(["engine", "chunks", "load + optimize s", "queries", "hybrid p50 ms", "hybrid p99 ms", "note"], rows)


def plot(data: dict) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for engine, sizes in data["results"].items():
        points = [(int(s), r) for s, r in sizes.items() if "p50_ms" in r]
        if not points:
            continue
        xs = [s for s, _ in points]
        line, = ax.plot(xs, [r["p50_ms"] for _, r in points], marker="o", label=f"{engine} p50")
        ax.plot(xs, [r["p99_ms"] for _, r in points], marker="x", linestyle=":", color=line.get_color(),
                label=f"{engine} p99")
    ax.axhline(data["targets"]["p50_ms_at_100k"], color="red", linestyle="--", linewidth=1, label="p50 target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks in the index")
    ax.set_ylabel("hybrid query latency, ms")
    ax.legend(fontsize=8)
    ax.set_title("hybrid retrieval latency vs index size")
    return save_plot(fig, NAME)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="hybrid query latency vs index size, embedded engine vs qdrant-client")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--queries", type=int, default=200, help="queries per engine and size")
    p.add_argument("--budget", type=float, default=20.0, help="seconds of querying per engine and size, at most")
    p.add_argument("--qdrant-local-max", type=int, default=100_000, help="largest size to load into local mode")
    return p


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    main()
