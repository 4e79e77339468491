"""Second-stage ordering by Cohere's rerank API (v2), with the local order as the safety net.

The fused candidates (50 by default) go to ``/v2/rerank`` with the question; the
best ``top_k`` come back with a relevance score in ``rerank_score``. Personal data
is masked before anything leaves (the order is all we need back, so masking is
one-way here). A timeout, an API error or an answer that does not fit the request
never fails retrieval: the candidates are ordered by the fallback reranker (the
local blend) instead, and the fallback is logged and counted. Each returned chunk
says who ordered it in ``extra["reranked_by"]``, which the agent reports.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import cohere
import httpx
from cohere.core.api_error import ApiError

from config.types import FallbackRecorder
from rag.rerank import LocalReranker, Reranker
from rag.types import RetrievedChunk

logger = logging.getLogger(__name__)


class RerankResponseError(Exception):
    """Cohere answered, but not with a ranking of the documents we sent."""


class CohereReranker:
    def __init__(
        self,
        client: cohere.AsyncClientV2,
        model: str,
        *,
        mask: Callable[[str], str],
        fallback: Reranker | None = None,
        timeout: float = 5.0,
        max_tokens_per_doc: int | None = None,
        fallbacks: FallbackRecorder | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self.name = f"cohere:{model}"
        self._mask = mask
        self._fallback = fallback or LocalReranker()
        self._timeout = timeout
        self._max_tokens_per_doc = max_tokens_per_doc
        self._fallbacks = fallbacks

    async def rerank(self, query: str, chunks: list[RetrievedChunk], top_k: int) -> list[RetrievedChunk]:
        if not chunks:
            return []
        try:
            ranked = await self._cohere(query, chunks, top_k)
        except (ApiError, httpx.HTTPError, TimeoutError, RerankResponseError, ValueError) as exc:
            reason = "timeout" if isinstance(exc, (TimeoutError, httpx.TimeoutException)) else "error"
            logger.warning("cohere rerank failed (%s: %s); using the %s order", type(exc).__name__, reason,
                           self._fallback.name)
            if self._fallbacks is not None:
                self._fallbacks.record("reranker", reason)
            ordered = await self._fallback.rerank(query, chunks, top_k)
            for chunk in ordered:
                chunk.extra["reranked_by"] = self._fallback.name
            return ordered
        return ranked

    async def _cohere(self, query: str, chunks: list[RetrievedChunk], top_k: int) -> list[RetrievedChunk]:
        documents = [self._mask(c.text) for c in chunks]  # chunk text already starts with its heading path
        top_n = min(top_k, len(chunks))
        async with asyncio.timeout(self._timeout):
            response = await self._client.rerank(
                model=self.model, query=self._mask(query), documents=documents, top_n=top_n,
                **({"max_tokens_per_doc": self._max_tokens_per_doc} if self._max_tokens_per_doc else {}),
            )
        seen: set[int] = set()
        ranked: list[RetrievedChunk] = []
        for result in response.results:
            if not 0 <= result.index < len(chunks) or result.index in seen:
                raise RerankResponseError(f"result index {result.index} does not match the {len(chunks)} documents")
            seen.add(result.index)
            chunk = chunks[result.index]
            chunk.extra.setdefault("fusion_score", chunk.score)
            chunk.extra["reranked_by"] = self.name
            chunk.rerank_score = float(result.relevance_score)
            chunk.score = chunk.rerank_score
            ranked.append(chunk)
        if len(ranked) < top_n:
            raise RerankResponseError(f"{len(ranked)} results for top_n={top_n}")
        return ranked[:top_k]
