"""Counts every time a production backend was replaced by an embedded one.

Two kinds: at start-up (no LLM, Cohere or Qdrant configured: the embedded piece is
used for the life of the process) and per request (the LLM timed out and the
extractive answerer replied; Cohere failed and the local order was kept). The
answer's own safety net counts here too, since each of those turns a model answer
into a hand-off: ``citation`` (hallucinated / missing), ``guard`` (which check
stopped an answer), ``documents`` (injected sentences cut out). Each is logged where
it happens; this object keeps the counts for ``/metrics``. Counts are per process,
which is what a Prometheus scrape of that process expects.

Components and reasons in use: ``index``/``reranker``/``answerer``: ``not_configured``;
``reranker``: ``timeout`` | ``error``; ``answerer``: ``timeout`` | ``unavailable`` |
``rejected`` | ``bad_output`` | ``prompt_too_large`` | ``wrong_language`` |
``language_mismatch``; ``citation``: ``hallucinated`` | ``missing``; ``guard``: ``leak`` |
``injection`` | ``placeholder`` | ``link`` | ``number`` | ``promise``; ``documents``:
``injection_removed``.
"""
from __future__ import annotations

import threading
from collections import Counter


class FallbackCounter:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()  # rerank and answer paths may run on other threads' loops

    def record(self, component: str, reason: str) -> None:
        """``component``: answerer | reranker | index | citation | guard …; ``reason``: a short fixed word."""
        with self._lock:
            self._counts[(component, reason)] += 1

    def fallback_counts(self) -> dict[str, dict[str, int]]:
        """``{component: {reason: count}}``, e.g. ``{"answerer": {"timeout": 2}}``."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (component, reason), count in sorted(self._counts.items()):
                out.setdefault(component, {})[reason] = count
            return out

    def count(self, component: str, reason: str | None = None) -> int:
        with self._lock:
            return sum(n for (c, r), n in self._counts.items() if c == component and (reason is None or r == reason))
