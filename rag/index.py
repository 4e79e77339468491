"""The vector store seam: dense + sparse search over chunks, with payload filters.

Two implementations are planned: the embedded ``EdgeIndex`` (qdrant-edge, a
directory on disk) and a Qdrant-server one for production. Both store, per chunk,
a named dense vector ``dense`` and a BM25 sparse vector ``sparse`` (IDF applied by
the store) plus a payload with the chunk's text and metadata.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from rag.sparse import SparseVec
from rag.types import ChunkRecord

# Payload keys with a keyword index; filters on them are cheap.
FILTERABLE_FIELDS = ("document", "document_id", "category", "language")

# {"category": "pricing"} or {"language": ["en", "ms"]} (any of); all keys must match.
Filters = Mapping[str, str | Sequence[str]]


class VectorIndexError(Exception):
    """The vector store failed or refused an operation."""


class IndexHit(NamedTuple):
    chunk_id: str
    score: float
    payload: dict[str, Any]
    # Sparse-arm hits: the chunk's stored term ids, returned with the hit so the retriever's query-overlap
    # weight needs no second round trip for them. None where the index did not return them.
    terms: tuple[int, ...] | None = None


@dataclass(frozen=True)
class StoredVectors:
    """A chunk's vectors as stored, so unchanged content is never re-embedded."""

    dense: np.ndarray
    sparse: SparseVec
    payload: dict[str, Any]


@runtime_checkable
class VectorIndex(Protocol):
    async def upsert(self, chunks: Sequence[ChunkRecord], dense: np.ndarray, sparse: Sequence[SparseVec]) -> None:
        """Insert or replace chunks (by chunk_id); rows of ``dense`` and ``sparse`` align with ``chunks``."""
        ...

    async def delete_document(self, document_id: str) -> None: ...

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None: ...

    async def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, StoredVectors]:
        """Stored vectors of the given chunks; unknown ids are absent from the result."""
        ...

    async def search_dense(self, vector: np.ndarray, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        """Cosine similarity, best first."""
        ...

    async def search_sparse(self, sparse: SparseVec, limit: int, filters: Filters | None = None) -> list[IndexHit]:
        """BM25 (the store multiplies in IDF), best first; only chunks sharing a term are returned.

        Hits should carry ``terms`` (the stored sparse indices): the retriever reads them for its overlap
        weight and otherwise falls back to ``get_vectors``, a second call that fetches far more.
        """
        ...

    async def count(self) -> int: ...

    async def optimize(self) -> None:
        """Compact and index after bulk loads; a no-op where the store does it by itself."""
        ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


def checked_vectors(chunks: Sequence[ChunkRecord], dense: np.ndarray, sparse: Sequence[SparseVec], dim: int) -> np.ndarray:
    """The dense matrix as float32, after checking there is one dense and one sparse vector per chunk."""
    dense = np.asarray(dense, dtype=np.float32)
    if dense.shape != (len(chunks), dim) or len(sparse) != len(chunks):
        raise ValueError(
            f"{len(chunks)} chunks need dense {(len(chunks), dim)} and as many sparse vectors; "
            f"got dense {dense.shape} and {len(sparse)} sparse"
        )
    return dense
