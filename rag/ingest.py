"""Ingestion: files in, searchable chunks out, doing as little work as possible.

Embedding is the slow step (≈8 chunks/s on 2 cores), so:

* an unchanged file (same sha256) is skipped without parsing;
* a changed file is re-chunked, and every chunk whose text was already indexed (in
  this or any other document) reuses its stored vector, checked against the
  content hash kept in the index payload.

Write order per file is index upsert → delete stale chunks → catalog commit. The
catalog's sha256 is only updated last, so after a crash at any point the next
run sees the file as changed and repairs the index. Document ids derive from the
source path, so even a brand-new document interrupted before its commit is
cleaned up when it is ingested again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from rag.catalog import Catalog, ChunkInfo, DocumentInfo
from rag.chunking import Chunker, TextChunk
from rag.embedding import Embedder
from rag.hashing import content_hash, file_sha256
from rag.index import VectorIndex
from rag.loaders import SUPPORTED_SUFFIXES, DocumentLoadError, load_document_bytes
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord

logger = logging.getLogger(__name__)

FileStatus = Literal["added", "updated", "skipped", "failed"]
LanguageDetector = Callable[[str], str]
Progress = Callable[[int, int, str], None]  # (files done, files total, file name)

_LANGUAGE_SAMPLE_CHARS = 4000


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    reason: str | None = None  # why it was skipped or failed
    chunks: int = 0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    chunks_added: int = 0  # chunks whose content is new to their document
    chunks_removed: int = 0  # chunks whose content left their document (changed or deleted files)
    chunks_embedded: int = 0
    chunks_reused: int = 0  # vectors taken from the index instead of re-embedding
    seconds: float = 0.0

    def with_status(self, status: FileStatus) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def added(self) -> list[FileResult]:
        return self.with_status("added")

    @property
    def updated(self) -> list[FileResult]:
        return self.with_status("updated")

    @property
    def skipped(self) -> list[FileResult]:
        return self.with_status("skipped")

    @property
    def failed(self) -> list[FileResult]:
        return self.with_status("failed")


def guess_language(text: str) -> str:
    """Script heuristic used when no detector is injected: Han → zh, Tamil → ta, else en."""
    letters = han = tamil = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        cp = ord(ch)
        if 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x3134F:
            han += 1
        elif 0x0B80 <= cp <= 0x0BFF:
            tamil += 1
    if letters and han / letters >= 0.2:
        return "zh"
    if letters and tamil / letters >= 0.2:
        return "ta"
    return "en"


def document_id_for(source_path: str) -> str:
    """Stable per path, so an interrupted first ingestion is overwritten, not orphaned."""
    return content_hash(f"document:{source_path}")[:32]


@dataclass(frozen=True)
class _Candidate:
    path: Path
    skip_reason: str | None = None
    fail_reason: str | None = None


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        index: VectorIndex,
        chunker: Chunker,
        language_detector: LanguageDetector | None = None,
        *,
        sparse_encoder: BM25SparseEncoder | None = None,
        max_file_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.index = index
        self.chunker = chunker
        self.language_detector = language_detector
        self.sparse_encoder = sparse_encoder or BM25SparseEncoder()
        self.max_file_bytes = max_file_bytes

    # --- public -------------------------------------------------------------------

    async def ingest(
        self,
        paths: Sequence[Path | str],
        category: str | None = None,
        language: str | None = None,
        progress: Progress | None = None,
        *,
        prune: bool = False,
    ) -> IngestReport:
        """Ingest files and folders (recursively). ``prune`` also deletes catalogued documents
        under the given folders whose files no longer exist."""
        started = time.monotonic()
        report = IngestReport()
        candidates = await asyncio.to_thread(_expand, [Path(p) for p in paths])
        for done, candidate in enumerate(candidates, 1):
            if candidate.skip_reason:
                result = FileResult(str(candidate.path), "skipped", candidate.skip_reason)
            elif candidate.fail_reason:
                result = FileResult(str(candidate.path), "failed", candidate.fail_reason)
            else:
                result = await self._ingest_file(candidate.path, category, language, report)
            report.files.append(result)
            log = logger.warning if result.status == "failed" else logger.info
            log(
                "ingest %s: %s",
                result.status,
                candidate.path.name,
                extra={"reason": result.reason, "chunks": result.chunks},
            )
            if progress is not None:
                progress(done, len(candidates), candidate.path.name)
        if prune:
            await self._prune([Path(p) for p in paths], report)
        if report.chunks_embedded or report.chunks_reused or report.chunks_removed:
            await self.index.optimize()
        report.seconds = round(time.monotonic() - started, 2)
        return report

    async def delete(self, name_or_path: str | Path) -> DocumentInfo | None:
        """Remove a document from the index and the catalog; None if no document matches."""
        key = str(name_or_path)
        match = await self.catalog.resolve(key)
        if match is None and (os.sep in key or Path(key).exists()):
            match = await self.catalog.resolve(str(Path(key).expanduser().resolve()))
        if match is None:
            return None
        await self.index.delete_document(match.id)
        deleted = await self.catalog.delete_by_id(match.id)
        logger.info("deleted document %s", match.name, extra={"chunks": match.chunk_count})
        return deleted

    # --- one file ------------------------------------------------------------------

    async def _ingest_file(
        self, path: Path, category: str | None, language: str | None, report: IngestReport
    ) -> FileResult:
        source = str(path)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            return FileResult(source, "failed", f"cannot read: {exc.strerror or exc}")
        if len(data) > self.max_file_bytes:
            return FileResult(source, "failed", f"larger than {self.max_file_bytes // (1024 * 1024)} MB")
        sha = file_sha256(data)
        existing = await self.catalog.get_by_path(source)
        category = category if category is not None else (existing.category if existing else None)
        if (
            existing is not None
            and existing.sha256 == sha
            and existing.category == category
            and (language is None or existing.language == language)
        ):
            return FileResult(source, "skipped", "unchanged", existing.chunk_count)

        try:
            chunks, detected = await asyncio.to_thread(self._parse, path.name, data)
        except DocumentLoadError as exc:
            return FileResult(source, "failed", exc.reason)
        if not chunks:
            return FileResult(source, "failed", "no extractable text (a scanned PDF or an empty file?)")

        document_id = existing.id if existing else document_id_for(source)
        language = language or detected
        records = [
            ChunkRecord(
                chunk_id=f"{document_id}:{c.position}",
                document=path.name,
                document_id=document_id,
                text=c.text,
                position=c.position,
                heading=c.heading,
                category=category,
                language=language,
            )
            for c in chunks
        ]
        dense, reused = await self._vectors(chunks)
        sparse = await asyncio.to_thread(self.sparse_encoder.encode_documents, [c.text for c in chunks])

        old_chunks = await self.catalog.list_chunks(document_id) if existing else []
        if existing is None:
            await self.index.delete_document(document_id)  # leftovers of an interrupted first attempt
        await self.index.upsert(records, dense, sparse)
        new_ids = {r.chunk_id for r in records}
        await self.index.delete_chunks([c.id for c in old_chunks if c.id not in new_ids])
        await self.catalog.save_document(
            document_id=document_id,
            source_path=source,
            name=path.name,
            sha256=sha,
            size_bytes=len(data),
            kind=path.suffix.lower().lstrip("."),
            category=category,
            language=language,
            chunks=[
                ChunkInfo(r.chunk_id, document_id, c.position, c.heading, c.text, c.token_count, c.content_hash, c.page)
                for r, c in zip(records, chunks)
            ],
        )

        old_hashes = {c.content_hash for c in old_chunks}
        new_hashes = {c.content_hash for c in chunks}
        report.chunks_added += sum(1 for c in chunks if c.content_hash not in old_hashes)
        report.chunks_removed += sum(1 for c in old_chunks if c.content_hash not in new_hashes)
        report.chunks_reused += reused
        report.chunks_embedded += len(chunks) - reused
        return FileResult(source, "updated" if existing else "added", None, len(chunks))

    def _parse(self, file_name: str, data: bytes) -> tuple[list[TextChunk], str]:
        """Blocking: parse, chunk and detect the language (runs in a worker thread)."""
        blocks = load_document_bytes(file_name, data)
        chunks = self.chunker.chunk(blocks)
        sample = "\n".join(b.text for b in blocks)[:_LANGUAGE_SAMPLE_CHARS]
        detected = self.language_detector(sample) if self.language_detector else guess_language(sample)
        return chunks, detected

    async def _vectors(self, chunks: list[TextChunk]) -> tuple[np.ndarray, int]:
        """Dense vectors for the chunks, reusing indexed ones with identical content; returns (vectors, reused)."""
        known = await self.catalog.chunk_ids_by_hash(c.content_hash for c in chunks)
        stored = await self.index.get_vectors([cid for ids in known.values() for cid in ids])
        by_hash = {
            v.payload.get("content_hash"): v.dense for v in stored.values() if v.payload.get("content_hash")
        }
        dense = np.zeros((len(chunks), self.embedder.dim), dtype=np.float32)
        missing: list[int] = []
        for i, chunk in enumerate(chunks):
            vector = by_hash.get(chunk.content_hash)
            if vector is not None and vector.shape == (self.embedder.dim,):
                dense[i] = vector
            else:
                missing.append(i)
        if missing:
            dense[missing] = await self.embedder.embed_passages([chunks[i].text for i in missing])
        return dense, len(chunks) - len(missing)

    async def _prune(self, roots: list[Path], report: IngestReport) -> None:
        folders = [str(p.expanduser().resolve()) for p in roots if p.is_dir()]
        if not folders:
            return
        for document in await self.catalog.list_documents():
            inside = any(document.source_path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)
            if inside and not await asyncio.to_thread(os.path.exists, document.source_path):
                await self.index.delete_document(document.id)
                await self.catalog.delete_by_id(document.id)
                report.chunks_removed += document.chunk_count
                report.files.append(FileResult(document.source_path, "skipped", "deleted: file no longer exists"))
                logger.info("pruned document %s", document.name)


def _expand(paths: list[Path]) -> list[_Candidate]:
    """Files to consider, in a stable order; folders are walked, hidden entries reported, not read."""
    seen: set[Path] = set()
    out: list[_Candidate] = []

    def add(candidate: _Candidate) -> None:
        if candidate.path not in seen:
            seen.add(candidate.path)
            out.append(candidate)

    for raw in paths:
        path = raw.expanduser().resolve()
        if path.is_dir():
            for folder, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
                for name in sorted(filenames):
                    add(_classify(Path(folder) / name, explicit=False))
        elif path.is_file():
            add(_classify(path, explicit=True))
        else:
            add(_Candidate(path, fail_reason="not found"))
    return out


def _hidden(name: str) -> bool:
    return name.startswith((".", "~$")) or name == "__pycache__"


def _classify(path: Path, *, explicit: bool) -> _Candidate:
    if not explicit and _hidden(path.name):
        return _Candidate(path, skip_reason="hidden file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return _Candidate(path, skip_reason=f"unsupported type {path.suffix.lower() or '(none)'}")
    return _Candidate(path)
