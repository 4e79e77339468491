"""The retrieval-scale benchmark's comparison engine: qdrant-client in local mode
(``QdrantClient(":memory:")`` or ``path=``), holding the same schema as ``rag.edge_index``
(named dense vector ``dense`` with cosine distance, sparse vector ``sparse`` with the IDF
modifier, the chunk payload) and answering the slice of ``rag.index.VectorIndex`` that
``HybridRetriever`` reads. Client calls are blocking, so they run in a worker thread.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from qdrant_client import QdrantClient, models

from rag.edge_index import DENSE, SPARSE, point_id
from rag.index import Filters, IndexHit, StoredVectors
from rag.sparse import SparseVec
from rag.types import ChunkRecord

COLLECTION = "supportlah_chunks"
_BATCH = 512


class QdrantLocalIndex:
    def __init__(self, location: str = ":memory:", *, dim: int = 384) -> None:
        self.dim = dim
        self._client = QdrantClient(location=location) if location == ":memory:" else QdrantClient(path=location)
        self._client.create_collection(
            COLLECTION,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )

    async def upsert(self, chunks: Sequence[ChunkRecord], dense: np.ndarray, sparse: Sequence[SparseVec]) -> None:
        def write() -> None:
            for start in range(0, len(chunks), _BATCH):
                points = [
                    models.PointStruct(
                        id=point_id(chunk.chunk_id),
                        vector={DENSE: vector.tolist(),
                                SPARSE: models.SparseVector(indices=list(sv.indices), values=list(sv.values))},
                        payload={"chunk_id": chunk.chunk_id, "document": chunk.document,
                                 "document_id": chunk.document_id, "text": chunk.text, "position": chunk.position},
                    )
                    for chunk, vector, sv in zip(chunks[start:start + _BATCH], dense[start:start + _BATCH],
                                                 sparse[start:start + _BATCH])
                ]
                self._client.upsert(COLLECTION, points, wait=True)

        await asyncio.to_thread(write)

    async def optimize(self) -> None:
        """Local mode has no index to build."""

    async def search_dense(self, vector: np.ndarray, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        return await self._query(np.asarray(vector, dtype=np.float32).tolist(), DENSE, limit)

    async def search_sparse(self, sparse: SparseVec, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        if not len(sparse):
            return []
        query = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
        return await self._query(query, SPARSE, limit)

    async def _query(self, query: object, using: str, limit: int) -> list[IndexHit]:
        response = await asyncio.to_thread(
            self._client.query_points, COLLECTION, query=query, using=using, limit=limit, with_payload=True)
        return [IndexHit(p.payload["chunk_id"], float(p.score), dict(p.payload)) for p in response.points]

    async def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, StoredVectors]:
        records = await asyncio.to_thread(self._client.retrieve, COLLECTION, [point_id(c) for c in chunk_ids],
                                          with_payload=True, with_vectors=True)
        found = {}
        for record in records:
            vectors = record.vector or {}
            sv = vectors.get(SPARSE)
            found[record.payload["chunk_id"]] = StoredVectors(
                dense=np.asarray(vectors[DENSE], dtype=np.float32),
                sparse=SparseVec.from_weights(dict(zip(sv.indices, sv.values))) if sv is not None else SparseVec((), ()),
                payload=dict(record.payload),
            )
        return found

    async def count(self) -> int:
        return (await asyncio.to_thread(self._client.count, COLLECTION, exact=True)).count

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
