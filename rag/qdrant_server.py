"""Production vector index: a collection on a Qdrant server, through ``AsyncQdrantClient``.

The collection has exactly the embedded engine's schema (``rag.edge_index``): a
named dense vector ``dense`` (384, cosine), a sparse vector ``sparse`` with the IDF
modifier (so BM25 scores match), the same point ids (UUIDv5 of the chunk id), the
same payload, and keyword payload indexes on ``FILTERABLE_FIELDS``. Moving from
embedded to server is therefore a re-ingest into the same shape, and the hybrid
retriever cannot tell the two apart. Both arms stay separate (the retriever fuses
them itself to keep per-arm evidence); :meth:`QdrantServerIndex.search_hybrid`
offers the server-side prefetch + RRF in one round trip for callers that want it.

The client raises several families (HTTP, gRPC, local-mode ``ValueError``); every
call is wrapped so callers see ``VectorIndexError``.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from qdrant_client import AsyncQdrantClient, models

from rag.edge_index import DENSE, SPARSE, point_id, sparse_terms
from rag.edge_index import _payload as chunk_payload  # the one payload layout both engines store
from rag.index import FILTERABLE_FIELDS, Filters, IndexHit, StoredVectors, VectorIndexError, checked_vectors
from rag.sparse import SparseVec
from rag.types import ChunkRecord

logger = logging.getLogger(__name__)

_UPSERT_BATCH = 256
_T = TypeVar("_T")


def build_filter(filters: Filters | None) -> models.Filter | None:
    if not filters:
        return None
    conditions: list[models.Condition] = []
    for key, value in filters.items():
        if isinstance(value, str):
            conditions.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
        else:
            values = list(value)
            if not values:
                raise ValueError(f"empty list of values for filter {key!r}")
            conditions.append(models.FieldCondition(key=key, match=models.MatchAny(any=values)))
    return models.Filter(must=conditions)


class QdrantServerIndex:
    """``VectorIndex`` on a Qdrant collection; the collection is created on first use and checked after."""

    def __init__(self, client: AsyncQdrantClient, collection: str, *, dim: int = 384) -> None:
        self._client = client
        self.collection = collection
        self.dim = dim
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Create (or check) the collection now, to surface errors at start-up."""
        await self._ensure()

    async def _ensure(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            try:
                if await self._client.collection_exists(self.collection):
                    self._check(await self._client.get_collection(self.collection))
                else:
                    await self._client.create_collection(
                        self.collection,
                        vectors_config={DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)},
                        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    )
                    logger.info("qdrant collection created", extra={"collection": self.collection})
                    for field in FILTERABLE_FIELDS:
                        await self._client.create_payload_index(
                            self.collection, field, models.PayloadSchemaType.KEYWORD, wait=True)
            except VectorIndexError:
                raise
            except Exception as exc:
                raise VectorIndexError(f"qdrant collection {self.collection!r} unusable: {exc}") from exc
            self._ready = True

    def _check(self, info: models.CollectionInfo) -> None:
        """An existing collection must have our schema; a different one would give wrong scores silently."""
        params = info.config.params
        dense = params.vectors.get(DENSE) if isinstance(params.vectors, dict) else None
        sparse = (params.sparse_vectors or {}).get(SPARSE)
        problems = []
        if dense is None or dense.size != self.dim or dense.distance != models.Distance.COSINE:
            problems.append(f"a {self.dim}-dim cosine vector named {DENSE!r}")
        if sparse is None or sparse.modifier != models.Modifier.IDF:
            problems.append(f"a sparse vector named {SPARSE!r} with the IDF modifier")
        if problems:
            raise VectorIndexError(f"qdrant collection {self.collection!r} lacks {' and '.join(problems)}; "
                                   "use another SUPPORTLAH_QDRANT_COLLECTION or re-create it")

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        if self._closed:
            raise VectorIndexError("the index is closed")
        await self._ensure()
        try:
            return await call()
        except Exception as exc:  # HTTP, gRPC and local-mode errors share no base class
            raise VectorIndexError(f"qdrant {what} failed: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.close()

    async def healthy(self) -> bool:
        try:
            await self.count()
        except VectorIndexError as exc:
            logger.warning("qdrant index unhealthy: %s", exc)
            return False
        return True

    # --- writes -------------------------------------------------------------------

    async def upsert(self, chunks: Sequence[ChunkRecord], dense: np.ndarray, sparse: Sequence[SparseVec]) -> None:
        if not chunks:
            return
        dense = checked_vectors(chunks, dense, sparse, self.dim)
        points = [
            models.PointStruct(
                id=point_id(chunk.chunk_id),
                vector={DENSE: vector.tolist(),
                        SPARSE: models.SparseVector(indices=list(sv.indices), values=list(sv.values))},
                payload=chunk_payload(chunk),
            )
            for chunk, vector, sv in zip(chunks, dense, sparse)
        ]

        async def write() -> None:
            for start in range(0, len(points), _UPSERT_BATCH):
                await self._client.upsert(self.collection, points=points[start : start + _UPSERT_BATCH], wait=True)

        await self._call("upsert", write)

    async def delete_document(self, document_id: str) -> None:
        selector = models.FilterSelector(filter=build_filter({"document_id": document_id}))
        await self._call("delete_document",
                         lambda: self._client.delete(self.collection, points_selector=selector, wait=True))

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        ids = [point_id(c) for c in chunk_ids]
        if not ids:
            return
        selector = models.PointIdsList(points=ids)
        await self._call("delete_chunks",
                         lambda: self._client.delete(self.collection, points_selector=selector, wait=True))

    async def optimize(self) -> None:
        """The server indexes and compacts on its own schedule."""

    # --- reads --------------------------------------------------------------------

    async def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, StoredVectors]:
        ids = [point_id(c) for c in chunk_ids]
        if not ids:
            return {}
        records = await self._call("retrieve", lambda: self._client.retrieve(
            self.collection, ids=ids, with_payload=True, with_vectors=True))
        found: dict[str, StoredVectors] = {}
        for record in records:
            payload = dict(record.payload or {})
            vectors: Any = record.vector or {}
            sv = vectors.get(SPARSE)
            sparse = (SparseVec.from_weights(dict(zip(sv.indices, sv.values))) if sv is not None
                      else SparseVec((), ()))
            found[payload["chunk_id"]] = StoredVectors(
                dense=np.asarray(vectors[DENSE], dtype=np.float32), sparse=sparse, payload=payload)
        return found

    async def search_dense(self, vector: np.ndarray, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        query = np.asarray(vector, dtype=np.float32).tolist()
        return await self._query("search_dense", limit, filters, query=query, using=DENSE)

    async def search_sparse(self, sparse: SparseVec, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        """Hits carry their stored term ids, so the retriever's overlap weight needs no second round trip."""
        if not len(sparse):
            return []
        query = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
        return await self._query("search_sparse", limit, filters, query=query, using=SPARSE, with_vectors=[SPARSE])

    async def search_hybrid(self, vector: np.ndarray, sparse: SparseVec, limit: int,
                            filters: Filters | None = None) -> list[IndexHit]:
        """Both arms fused by the server (prefetch + reciprocal rank fusion) in one request."""
        condition = build_filter(filters)
        prefetch = [models.Prefetch(query=np.asarray(vector, dtype=np.float32).tolist(), using=DENSE, limit=limit,
                                    filter=condition)]
        if len(sparse):
            prefetch.append(models.Prefetch(
                query=models.SparseVector(indices=list(sparse.indices), values=list(sparse.values)),
                using=SPARSE, limit=limit, filter=condition))
        return await self._query("search_hybrid", limit, None, prefetch=prefetch,
                                 query=models.FusionQuery(fusion=models.Fusion.RRF))

    async def _query(self, what: str, limit: int, filters: Filters | None, **kwargs: Any) -> list[IndexHit]:
        condition = build_filter(filters)
        response = await self._call(what, lambda: self._client.query_points(
            self.collection, limit=limit, query_filter=condition, with_payload=True, **kwargs))
        return [IndexHit(p.payload["chunk_id"], float(p.score), dict(p.payload), sparse_terms(p.vector))
                for p in response.points]

    async def count(self) -> int:
        result = await self._call("count", lambda: self._client.count(self.collection, exact=True))
        return int(result.count)
