"""What is in the knowledge base: documents and their chunks, in SQL.

The vector index holds what search needs; the catalog is the source of truth for
"which files, which version (sha256), which chunks (content hash)", so ingestion
can skip unchanged files and reuse embeddings, and staff can list and delete.
Methods return plain frozen dataclasses, never ORM objects, so nothing lazy-loads
outside a session.

Schema (tables ``documents`` and ``chunks``):

* ``documents``: id (str pk), name, source_path (unique), sha256, size_bytes, kind,
  category?, language?, chunk_count, token_count, created_at, updated_at.
* ``chunks``: id (str pk, ``"{document_id}:{position}"``), document_id (FK, ON DELETE
  CASCADE), position, heading, text, token_count, content_hash (indexed), page?;
  unique (document_id, position).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from config.sql import Base, UTCDateTime


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)  # file name as ingested
    source_path: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # file suffix without the dot: md, pdf, docx, ...
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str | None] = mapped_column(String(16), index=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "position"),)

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(64), ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    page: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    name: str
    source_path: str
    sha256: str
    size_bytes: int
    kind: str
    category: str | None
    language: str | None
    chunk_count: int
    token_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChunkInfo:
    id: str
    document_id: str
    position: int
    heading: str
    text: str
    token_count: int
    content_hash: str
    page: int | None = None


@dataclass(frozen=True)
class CatalogStats:
    documents: int
    chunks: int
    tokens: int
    by_category: dict[str | None, int]  # documents per category (None: uncategorized)
    by_language: dict[str | None, int]  # documents per language


class AmbiguousDocument(Exception):
    """A file name matches several documents; the caller must give the path."""

    def __init__(self, name: str, paths: list[str]) -> None:
        super().__init__(f"{name!r} matches {len(paths)} documents: {', '.join(paths)}; give the full path")
        self.name = name
        self.paths = paths


def _document_info(row: Document) -> DocumentInfo:
    return DocumentInfo(
        id=row.id,
        name=row.name,
        source_path=row.source_path,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        kind=row.kind,
        category=row.category,
        language=row.language,
        chunk_count=row.chunk_count,
        token_count=row.token_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _chunk_info(row: Chunk) -> ChunkInfo:
    return ChunkInfo(
        id=row.id,
        document_id=row.document_id,
        position=row.position,
        heading=row.heading,
        text=row.text,
        token_count=row.token_count,
        content_hash=row.content_hash,
        page=row.page,
    )


class Catalog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- reads ------------------------------------------------------------------

    async def get(self, document_id: str) -> DocumentInfo | None:
        async with self._sessions() as session:
            row = await session.get(Document, document_id)
            return _document_info(row) if row else None

    async def get_by_path(self, source_path: str) -> DocumentInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(select(Document).where(Document.source_path == source_path))
            return _document_info(row) if row else None

    async def find(self, name_or_path: str) -> list[DocumentInfo]:
        """Documents whose source path or file name equals ``name_or_path`` (path matches first)."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Document)
                    .where(or_(Document.source_path == name_or_path, Document.name == name_or_path))
                    .order_by(Document.source_path)
                )
            ).all()
        by_path = [r for r in rows if r.source_path == name_or_path]
        return [_document_info(r) for r in (by_path or rows)]

    async def list_documents(self, *, category: str | None = None, language: str | None = None) -> list[DocumentInfo]:
        query = select(Document).order_by(Document.name, Document.source_path)
        if category is not None:
            query = query.where(Document.category == category)
        if language is not None:
            query = query.where(Document.language == language)
        async with self._sessions() as session:
            return [_document_info(r) for r in (await session.scalars(query)).all()]

    async def list_chunks(self, document_id: str) -> list[ChunkInfo]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.position)
            )
            return [_chunk_info(r) for r in rows.all()]

    async def chunk_ids_by_hash(self, hashes: Iterable[str]) -> dict[str, list[str]]:
        """Existing chunks (any document) with each content hash: their vectors can be reused."""
        wanted = sorted(set(hashes))
        found: dict[str, list[str]] = {}
        async with self._sessions() as session:
            for start in range(0, len(wanted), 500):  # stay under SQL parameter limits
                rows = await session.execute(
                    select(Chunk.content_hash, Chunk.id).where(Chunk.content_hash.in_(wanted[start : start + 500]))
                )
                for content, chunk_id in rows:
                    found.setdefault(content, []).append(chunk_id)
        return found

    async def headings(self, limit: int = 2000) -> list[tuple[str, str | None, str]]:
        """(document name, its language, heading path) of each chunk with one, in reading order:
        what the knowledge base covers."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Document.name, Document.language, Chunk.heading)
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.heading != "").order_by(Document.name, Chunk.position).limit(limit)
            )
            return [(name, language, heading) for name, language, heading in rows]

    async def stats(self) -> CatalogStats:
        async with self._sessions() as session:
            documents, chunks, tokens = (
                await session.execute(
                    select(
                        func.count(Document.id),
                        func.coalesce(func.sum(Document.chunk_count), 0),
                        func.coalesce(func.sum(Document.token_count), 0),
                    )
                )
            ).one()
            by_category = dict(
                (await session.execute(select(Document.category, func.count()).group_by(Document.category))).all()
            )
            by_language = dict(
                (await session.execute(select(Document.language, func.count()).group_by(Document.language))).all()
            )
        return CatalogStats(int(documents), int(chunks), int(tokens), by_category, by_language)

    # --- writes -----------------------------------------------------------------

    async def upsert_document(
        self,
        *,
        document_id: str,
        source_path: str,
        name: str,
        sha256: str,
        size_bytes: int,
        kind: str,
        category: str | None = None,
        language: str | None = None,
    ) -> DocumentInfo:
        """Create or update the document at ``source_path``; its chunks are left as they are."""
        async with self._sessions() as session, session.begin():
            row = await self._upsert(
                session,
                document_id=document_id,
                source_path=source_path,
                name=name,
                sha256=sha256,
                size_bytes=size_bytes,
                kind=kind,
                category=category,
                language=language,
            )
            return _document_info(row)

    async def replace_chunks(self, document_id: str, chunks: Sequence[ChunkInfo]) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(Document, document_id)
            if row is None:
                raise KeyError(f"no document {document_id!r}")
            await self._replace(session, row, chunks)

    async def save_document(
        self,
        *,
        document_id: str,
        source_path: str,
        name: str,
        sha256: str,
        size_bytes: int,
        kind: str,
        category: str | None,
        language: str | None,
        chunks: Sequence[ChunkInfo],
    ) -> DocumentInfo:
        """Upsert the document and replace its chunks in one transaction (the ingestion commit point)."""
        async with self._sessions() as session, session.begin():
            row = await self._upsert(
                session,
                document_id=document_id,
                source_path=source_path,
                name=name,
                sha256=sha256,
                size_bytes=size_bytes,
                kind=kind,
                category=category,
                language=language,
            )
            await self._replace(session, row, chunks)
            return _document_info(row)

    async def delete_by_id(self, document_id: str) -> DocumentInfo | None:
        async with self._sessions() as session, session.begin():
            row = await session.get(Document, document_id)
            if row is None:
                return None
            info = _document_info(row)
            await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
            await session.execute(delete(Document).where(Document.id == document_id))
            return info

    async def resolve(self, name_or_path: str) -> DocumentInfo | None:
        """The one document with this path or name; ``AmbiguousDocument`` if a bare name matches several."""
        matches = await self.find(name_or_path)
        if len(matches) > 1:
            raise AmbiguousDocument(name_or_path, [m.source_path for m in matches])
        return matches[0] if matches else None

    async def delete_document(self, name_or_path: str) -> DocumentInfo | None:
        """Delete the document with this path or name (its chunks cascade); None if there is none."""
        match = await self.resolve(name_or_path)
        return await self.delete_by_id(match.id) if match else None

    @staticmethod
    async def _upsert(
        session: AsyncSession,
        *,
        document_id: str,
        source_path: str,
        name: str,
        sha256: str,
        size_bytes: int,
        kind: str,
        category: str | None,
        language: str | None,
    ) -> Document:
        now = datetime.now(timezone.utc)
        row = await session.scalar(select(Document).where(Document.source_path == source_path))
        if row is None:
            row = Document(
                id=document_id, source_path=source_path, created_at=now, chunk_count=0, token_count=0
            )
            session.add(row)
        elif row.id != document_id:
            raise ValueError(f"{source_path} is already catalogued as document {row.id}, not {document_id}")
        row.name = name
        row.sha256 = sha256
        row.size_bytes = size_bytes
        row.kind = kind
        row.category = category
        row.language = language
        row.updated_at = now
        await session.flush()
        return row

    @staticmethod
    async def _replace(session: AsyncSession, row: Document, chunks: Sequence[ChunkInfo]) -> None:
        await session.execute(delete(Chunk).where(Chunk.document_id == row.id))
        session.add_all(
            Chunk(
                id=c.id,
                document_id=row.id,
                position=c.position,
                heading=c.heading,
                text=c.text,
                token_count=c.token_count,
                content_hash=c.content_hash,
                page=c.page,
            )
            for c in chunks
        )
        row.chunk_count = len(chunks)
        row.token_count = sum(c.token_count for c in chunks)
        row.updated_at = datetime.now(timezone.utc)
        await session.flush()
