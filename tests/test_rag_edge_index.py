"""EdgeIndex on a real qdrant-edge shard in a temporary directory."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from rag.edge_index import EdgeIndex
from rag.index import VectorIndex, VectorIndexError
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord

DIM = 8
ENCODER = BM25SparseEncoder()


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def records(document_id: str, texts: list[str], **meta) -> list[ChunkRecord]:
    return [
        ChunkRecord(chunk_id=f"{document_id}:{i}", document=f"{document_id}.md", document_id=document_id,
                    text=text, position=i, heading="Head", **meta)
        for i, text in enumerate(texts)
    ]


async def add(index: EdgeIndex, chunks: list[ChunkRecord], dense: list[np.ndarray]) -> None:
    await index.upsert(chunks, np.vstack(dense), ENCODER.encode_documents([c.text for c in chunks]))


async def test_upsert_search_filters_and_payload(tmp_path: Path):
    index = EdgeIndex(tmp_path / "index", dim=DIM)
    assert isinstance(index, VectorIndex)
    try:
        await add(index, records("prices", ["Chemical wash costs $80", "General service costs $30"], category="pricing", language="en"),
                  [unit(1, 0), unit(0, 1)])
        await add(index, records("faq", ["我们周日营业", "GS-HDB-2 package for HDB flats"], category="faq", language="zh"),
                  [unit(1, 1), unit(0, 0, 1)])
        assert await index.count() == 4

        dense = await index.search_dense(unit(1, 0), limit=2)
        assert [h.chunk_id for h in dense] == ["prices:0", "faq:0"]
        assert dense[0].score == pytest.approx(1.0, abs=1e-5)
        assert dense[0].payload == {
            "chunk_id": "prices:0", "document": "prices.md", "document_id": "prices", "text": "Chemical wash costs $80",
            "heading": "Head", "position": 0, "category": "pricing", "language": "en",
            "content_hash": hashlib.sha256(b"Chemical wash costs $80").hexdigest(),
        }

        sparse = await index.search_sparse(ENCODER.encode_query("GS-HDB-2 price"), limit=5)
        assert [h.chunk_id for h in sparse] == ["faq:1"]
        assert sparse[0].score > 0
        assert [h.chunk_id for h in await index.search_sparse(ENCODER.encode_query("周日"), limit=5)] == ["faq:0"]
        assert await index.search_sparse(ENCODER.encode_query("the of"), limit=5) == []  # nothing to match

        only_faq = await index.search_dense(unit(1, 0), limit=5, filters={"category": "faq"})
        assert {h.chunk_id for h in only_faq} == {"faq:0", "faq:1"}
        any_of = await index.search_dense(unit(1, 0), limit=5, filters={"language": ["zh", "ta"], "document_id": "faq"})
        assert {h.chunk_id for h in any_of} == {"faq:0", "faq:1"}
        assert await index.search_sparse(ENCODER.encode_query("costs"), limit=5, filters={"category": "faq"}) == []
    finally:
        await index.close()


async def test_persists_across_reopen_and_deletes_by_document_and_chunk(tmp_path: Path):
    path = tmp_path / "index"
    index = EdgeIndex(path, dim=DIM)
    await add(index, records("a", ["alpha one", "alpha two", "alpha three"]), [unit(1), unit(1, 1), unit(0, 1)])
    await add(index, records("b", ["beta one"]), [unit(0, 0, 1)])
    await index.optimize()
    await index.close()

    reopened = EdgeIndex(path, dim=DIM)
    try:
        assert await reopened.healthy()
        assert await reopened.count() == 4
        stored = await reopened.get_vectors(["a:1", "b:0", "missing:9"])
        assert set(stored) == {"a:1", "b:0"}
        np.testing.assert_allclose(stored["a:1"].dense, unit(1, 1), atol=1e-6)
        expected = ENCODER.encode_document("alpha two")
        assert stored["a:1"].sparse.indices == expected.indices
        np.testing.assert_allclose(stored["a:1"].sparse.values, expected.values, rtol=1e-6)  # stored as float32
        assert stored["a:1"].payload["text"] == "alpha two"

        await reopened.delete_chunks(["a:2"])
        await reopened.delete_document("b")
        assert await reopened.count() == 2
        hits = await reopened.search_dense(unit(0, 0, 1), limit=10)
        assert {h.chunk_id for h in hits} == {"a:0", "a:1"}
        # Upserting an existing chunk id replaces it rather than adding a point.
        await add(reopened, records("a", ["alpha one, revised"]), [unit(1)])
        assert await reopened.count() == 2
        assert (await reopened.get_vectors(["a:0"]))["a:0"].payload["text"] == "alpha one, revised"
    finally:
        await reopened.close()


async def test_errors_become_vector_index_errors(tmp_path: Path):
    path = tmp_path / "index"
    index = EdgeIndex(path, dim=DIM)
    await add(index, records("a", ["alpha"]), [unit(1)])
    with pytest.raises(ValueError, match="dense"):
        await index.upsert(records("a", ["x"]), np.zeros((1, DIM + 1), dtype=np.float32), ENCODER.encode_documents(["x"]))
    await index.close()
    with pytest.raises(VectorIndexError, match="closed"):
        await index.count()
    assert not await index.healthy()

    wrong_dim = EdgeIndex(path, dim=DIM * 2)  # the stored shard is 8-d
    try:
        with pytest.raises(VectorIndexError, match="incompatible"):
            await wrong_dim.open()
    finally:
        await wrong_dim.close()
