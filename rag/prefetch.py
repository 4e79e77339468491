"""Query vectors started early: the e5 forward pass overlaps the work before the search.

Embedding a question costs 17-23 ms of CPU in the embedding thread, which releases the GIL.
Before a worker searches, it loads the message, runs the privacy and escalation hooks and
builds the conversation's memory: 10-20 ms of database round trips. Starting the embedding
when the message is picked up lets both happen at once instead of one after the other.

This is not a cache: a vector is handed to the next search for the same text and then
forgotten. Two customers asking the same question are still embedded twice, so what a
benchmark measures per message is what a customer's message costs.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import numpy as np

from rag.embedding import Embedder

logger = logging.getLogger(__name__)

MAX_PENDING = 64  # more than the concurrent jobs of a worker; older ones are dropped first
MAX_AGE_SECONDS = 30.0  # a backstop: a question whose search never came and nobody discarded is dropped


class QueryPrefetcher:
    def __init__(self, embedder: Embedder, *, max_pending: int = MAX_PENDING,
                 max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self._embedder = embedder
        self._max_pending = max_pending
        self._max_age = max_age_seconds
        self._pending: OrderedDict[str, tuple[float, asyncio.Task[np.ndarray]]] = OrderedDict()

    def start(self, query: str) -> None:
        """Begin embedding ``query``; the next ``vector(query)`` awaits this work instead of repeating it."""
        if not query.strip() or query in self._pending:
            return
        self._drop_stale()
        task = asyncio.ensure_future(self._embedder.embed_query(query))
        task.add_done_callback(_note_failure)
        self._pending[query] = (time.monotonic(), task)
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)[1][1].cancel()

    def discard(self, query: str) -> None:
        """The search will use other text (a follow-up rewritten from memory): stop this one if it has not run."""
        entry = self._pending.pop(query, None)
        if entry is not None:
            entry[1].cancel()

    async def vector(self, query: str) -> np.ndarray:
        """The query's vector: the started one if there is one, else embedded now."""
        entry = self._pending.pop(query, None)
        if entry is not None:
            task = entry[1]
            if task.get_loop() is asyncio.get_running_loop() and not task.cancelled():
                return await task  # an embedding error is raised here exactly as a direct call raises it
        return await self._embedder.embed_query(query)

    def __len__(self) -> int:
        return len(self._pending)

    def _drop_stale(self) -> None:
        oldest_kept = time.monotonic() - self._max_age
        while self._pending:
            started, task = next(iter(self._pending.values()))
            if started >= oldest_kept:
                return
            self._pending.popitem(last=False)
            task.cancel()


def _note_failure(task: asyncio.Task) -> None:
    """Retrieve a failed prefetch's exception so asyncio does not warn when no search collects it.
    A search that does collect it gets the same exception from ``await``."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a prefetched query embedding failed; its search will raise it or embed again",
                     extra={"error": type(task.exception()).__name__})
