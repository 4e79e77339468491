"""Knowledge-base files kept in the upload folder: add, delete, re-index.

One implementation for the admin API and the console, so an upload is checked, stored,
indexed and undone on failure the same way whichever door it came through. One change
at a time per process (ingestion is CPU-bound; two would only share the cores).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rag.catalog import Catalog, DocumentInfo
from rag.index import VectorIndex
from rag.ingest import Ingestor, document_id_for
from supportlah.admin.uploads import UploadLimits, UploadRejected, check_upload, safe_file_name

log = logging.getLogger(__name__)

_FIELD_MAX_BYTES = 1024


class KnowledgeError(Exception):
    """A change that did not happen; ``status`` is the HTTP status to answer with, ``rejected`` says the
    file itself was refused (as opposed to indexing failing)."""

    def __init__(self, status: int, reason: str, *, rejected: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rejected = rejected


class KnowledgeFiles:
    def __init__(self, catalog: Catalog, ingestor: Ingestor, index: VectorIndex, upload_dir: Path,
                 limits: UploadLimits) -> None:
        self.catalog = catalog
        self._ingestor = ingestor
        self._index = index
        self.upload_dir = upload_dir
        self.limits = limits
        self._lock = asyncio.Lock()

    async def add(self, name: str, data: bytes, *, category: str | None = None,
                  language: str | None = None) -> tuple[DocumentInfo, str]:
        """Check, store and index ``data`` as ``name`` (a safe file name); on any failure the folder and
        the index are as before. Returns the document and the ingest status (added, updated, unchanged)."""
        try:
            await asyncio.to_thread(check_upload, name, data, self.limits)
        except UploadRejected as exc:
            raise KnowledgeError(exc.status, exc.reason, rejected=True) from exc
        async with self._lock:
            return await self._store_and_ingest(name, data, category, language)

    async def _store_and_ingest(self, name: str, data: bytes, category: str | None,
                                language: str | None) -> tuple[DocumentInfo, str]:
        folder = self.upload_dir.resolve()
        path = folder / name
        previous = await asyncio.to_thread(lambda: path.read_bytes() if path.is_file() else None)
        await asyncio.to_thread(_write_atomically, path, data)
        try:
            report = await self._ingestor.ingest([path], category=category, language=language)
        except Exception as exc:
            await self._undo(path, previous)
            log.exception("upload indexing failed", extra={"document": name})
            raise KnowledgeError(503, f"indexing failed ({type(exc).__name__}); nothing was changed") from exc
        [result] = report.files
        if result.status == "failed":
            await self._undo(path, previous)
            raise KnowledgeError(422, f"{name}: {result.reason}")
        info = await self.catalog.get_by_path(str(path))
        assert info is not None
        return info, result.status

    async def _undo(self, path: Path, previous: bytes | None) -> None:
        if previous is not None:
            await asyncio.to_thread(_write_atomically, path, previous)
            return
        await asyncio.to_thread(path.unlink, True)
        document_id = document_id_for(str(path))
        await self._index.delete_document(document_id)
        await self.catalog.delete_by_id(document_id)

    async def delete(self, document: DocumentInfo) -> None:
        """Remove the document from the index and the catalog, and its file when we keep it."""
        async with self._lock:
            await self._index.delete_document(document.id)
            await self.catalog.delete_by_id(document.id)
            path = Path(document.source_path)
            if path.is_relative_to(self.upload_dir.resolve()):
                await asyncio.to_thread(path.unlink, True)

    async def reindex(self, document: DocumentInfo) -> DocumentInfo:
        """Chunk and embed the document's file again from scratch."""
        path = Path(document.source_path)
        if not await asyncio.to_thread(path.is_file):
            raise KnowledgeError(409, f"the file of {document.name} is no longer there; upload it again")
        async with self._lock:
            await self._index.delete_document(document.id)
            await self.catalog.delete_by_id(document.id)
            report = await self._ingestor.ingest([path], category=document.category, language=document.language)
        [result] = report.files
        if result.status == "failed":
            raise KnowledgeError(422, f"{document.name}: {result.reason}")
        info = await self.catalog.get_by_path(document.source_path)
        assert info is not None
        return info


async def read_upload(request: web.Request, max_bytes: int,
                      field_names: tuple[str, ...] = ()) -> tuple[str, bytes, dict[str, str]]:
    """The ``file`` part of a multipart body (streamed, at most ``max_bytes``), its safe name and the
    small text fields named in ``field_names``."""
    if not request.content_type.startswith("multipart/"):
        raise KnowledgeError(415, "send the file as multipart/form-data with a 'file' field")
    file_name: str | None = None
    data: bytes | None = None
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not hasattr(part, "read_chunk"):
                raise KnowledgeError(400, "nested multipart bodies are not accepted")
            if part.name == "file":
                file_name = part.filename
                data = await _read_limited(part, max_bytes, 413, f"file is larger than {max_bytes} bytes")
            elif part.name in field_names:
                raw = await _read_limited(part, _FIELD_MAX_BYTES, 400, f"{part.name} is too long")
                fields[part.name] = raw.decode("utf-8", errors="strict").strip()
            else:
                await part.release()
    except KnowledgeError:
        raise
    except (ValueError, AssertionError, UnicodeDecodeError, KeyError, HttpProcessingError) as exc:
        raise KnowledgeError(400, f"malformed multipart body ({type(exc).__name__})") from exc
    if data is None:
        raise KnowledgeError(400, "the 'file' field is missing")
    try:
        return safe_file_name(file_name), data, fields
    except UploadRejected as exc:
        raise KnowledgeError(exc.status, exc.reason) from exc


async def _read_limited(part, limit: int, status: int, message: str) -> bytes:  # noqa: ANN001
    buffer = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        buffer.extend(chunk)
        if len(buffer) > limit:
            raise KnowledgeError(status, message)
    return bytes(buffer)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data)
    partial.replace(path)
