"""Catalog on a real SQLite database."""
from pathlib import Path

import pytest
from sqlalchemy import text

from config.sql import Base, create_engine, session_factory
from rag.catalog import AmbiguousDocument, Catalog, Chunk, ChunkInfo, Document


@pytest.fixture
async def catalog(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[Document.__table__, Chunk.__table__])
    yield Catalog(session_factory(engine))
    await engine.dispose()


def chunks(document_id: str, texts: list[str]) -> list[ChunkInfo]:
    return [ChunkInfo(f"{document_id}:{i}", document_id, i, "Head", t, len(t.split()), f"hash-{t}") for i, t in enumerate(texts)]


async def save(catalog: Catalog, document_id: str, path: str, texts: list[str], **meta):
    fields = {"sha256": "s" * 64, "size_bytes": 100, "kind": "md", "category": None, "language": "en", **meta}
    return await catalog.save_document(
        document_id=document_id, source_path=path, name=Path(path).name, chunks=chunks(document_id, texts), **fields
    )


async def test_save_get_list_and_replace_chunks(catalog: Catalog):
    saved = await save(catalog, "d1", "/kb/prices.md", ["one two", "three"], category="pricing")
    assert (saved.name, saved.chunk_count, saved.token_count, saved.category) == ("prices.md", 2, 3, "pricing")
    assert saved.created_at.tzinfo is not None
    assert await catalog.get_by_path("/kb/prices.md") == saved
    assert await catalog.get("d1") == saved
    assert [c.text for c in await catalog.list_chunks("d1")] == ["one two", "three"]

    updated = await save(catalog, "d1", "/kb/prices.md", ["four"], sha256="t" * 64, category="pricing")
    assert (updated.chunk_count, updated.sha256, updated.created_at) == (1, "t" * 64, saved.created_at)
    assert updated.updated_at >= saved.updated_at
    assert [c.id for c in await catalog.list_chunks("d1")] == ["d1:0"]

    await save(catalog, "d2", "/kb/faq.md", ["x"], category="faq", language="zh")
    assert [d.name for d in await catalog.list_documents()] == ["faq.md", "prices.md"]
    assert [d.name for d in await catalog.list_documents(category="faq")] == ["faq.md"]
    assert [d.name for d in await catalog.list_documents(language="en")] == ["prices.md"]


async def test_upsert_document_and_replace_chunks_separately(catalog: Catalog):
    info = await catalog.upsert_document(document_id="d1", source_path="/kb/a.md", name="a.md", sha256="a" * 64,
                                         size_bytes=5, kind="md")
    assert info.chunk_count == 0
    await catalog.replace_chunks("d1", chunks("d1", ["alpha beta"]))
    assert (await catalog.get("d1")).token_count == 2
    with pytest.raises(KeyError):
        await catalog.replace_chunks("nope", [])
    with pytest.raises(ValueError):  # one path, one document id
        await catalog.upsert_document(document_id="other", source_path="/kb/a.md", name="a.md", sha256="a" * 64,
                                      size_bytes=5, kind="md")


async def test_chunk_ids_by_hash_finds_reusable_chunks_across_documents(catalog: Catalog):
    await save(catalog, "d1", "/kb/a.md", ["shared", "only-a"])
    await save(catalog, "d2", "/kb/b.md", ["shared"])
    found = await catalog.chunk_ids_by_hash(["hash-shared", "hash-only-a", "hash-missing"])
    assert sorted(found["hash-shared"]) == ["d1:0", "d2:0"]
    assert found["hash-only-a"] == ["d1:1"]
    assert "hash-missing" not in found


async def test_delete_by_name_or_path_cascades_and_refuses_ambiguous_names(catalog: Catalog):
    await save(catalog, "d1", "/kb/en/faq.md", ["a"])
    await save(catalog, "d2", "/kb/zh/faq.md", ["b"])
    await save(catalog, "d3", "/kb/prices.md", ["c", "d"])
    with pytest.raises(AmbiguousDocument) as ambiguous:
        await catalog.delete_document("faq.md")
    assert ambiguous.value.paths == ["/kb/en/faq.md", "/kb/zh/faq.md"]
    assert (await catalog.delete_document("/kb/zh/faq.md")).id == "d2"
    assert (await catalog.delete_document("prices.md")).id == "d3"
    assert await catalog.delete_document("prices.md") is None
    assert await catalog.list_chunks("d3") == []
    async with catalog._sessions() as session:  # no orphaned chunk rows
        assert (await session.execute(text("select count(*) from chunks"))).scalar() == 1


async def test_stats(catalog: Catalog):
    empty = await catalog.stats()
    assert (empty.documents, empty.chunks, empty.tokens, empty.by_category) == (0, 0, 0, {})
    await save(catalog, "d1", "/kb/a.md", ["one two", "three"], category="pricing")
    await save(catalog, "d2", "/kb/b.md", ["four five six"], category="pricing", language="zh")
    await save(catalog, "d3", "/kb/c.md", ["seven"])
    stats = await catalog.stats()
    assert (stats.documents, stats.chunks, stats.tokens) == (3, 4, 7)
    assert stats.by_category == {"pricing": 2, None: 1}
    assert stats.by_language == {"en": 2, "zh": 1}
