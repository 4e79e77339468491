"""Chunker: size limits, table-row integrity, heading prefixes and overlap."""
import hashlib
import random

import pytest

from rag.blocks import Block
from rag.chunking import Chunker
from rag.tokens import TokenCounter

WORDS = "aircon service chemical wash gas top-up compressor warranty booking price unit filter coil fan leak".split()


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18))).capitalize() + "."


def mixed_document(rng: random.Random) -> list[Block]:
    blocks = [Block("heading", "Guide", ("Guide",))]
    for section in range(6):
        path = ("Guide", f"Part {section}")
        blocks.append(Block("heading", path[-1], path))
        for _ in range(rng.randint(1, 8)):
            blocks.append(Block("paragraph", " ".join(sentence(rng) for _ in range(rng.randint(1, 12))), path))
        for row in range(rng.randint(0, 10)):
            blocks.append(Block("table_row", f"Item: P{section}-{row}; Price: ${row}0; Note: {sentence(rng)}", path))
    return blocks


def body(chunk_text: str) -> str:
    return chunk_text.split("\n\n", 1)[1]


@pytest.mark.parametrize("seed", range(5))
def test_no_chunk_exceeds_the_target_and_rows_stay_whole(counter, seed):
    rng = random.Random(seed)
    blocks = mixed_document(rng)
    chunker = Chunker(counter, target_tokens=160, overlap_tokens=40)
    chunks = chunker.chunk(blocks)
    assert chunks
    for position, chunk in enumerate(chunks):
        assert chunk.position == position
        assert chunk.token_count == counter.count(chunk.text) <= 160
        assert chunk.content_hash == hashlib.sha256(chunk.text.encode()).hexdigest()
    everything = "\n".join(c.text for c in chunks)
    for block in blocks:
        if block.kind == "table_row":
            assert block.text in everything  # every row is somewhere, whole
    for chunk in chunks:
        for line in chunk.text.split("\n\n"):
            if line.startswith("Item: "):
                assert any(line == b.text for b in blocks)  # and no chunk holds a fragment of one


def test_every_chunk_starts_with_its_heading_path(counter):
    blocks = [
        Block("heading", "Prices", ("Prices",)),
        Block("heading", "Installation", ("Prices", "Installation")),
        Block("paragraph", "Installing a wall-mounted unit costs $150 and takes two hours. " * 3, ("Prices", "Installation")),
        Block("heading", "Repairs", ("Prices", "Repairs")),
        Block("paragraph", "A diagnosis visit costs $40, waived if you go ahead with the repair. " * 3, ("Prices", "Repairs")),
    ]
    chunks = Chunker(counter, target_tokens=200, overlap_tokens=20, min_section_tokens=10).chunk(blocks)
    assert [c.heading for c in chunks] == ["Prices > Installation", "Prices > Repairs"]
    assert chunks[0].text.startswith("Prices > Installation\n\nInstalling a wall-mounted unit")
    assert chunks[1].text.startswith("Prices > Repairs\n\nA diagnosis visit")


def test_tiny_sections_are_merged_with_their_headings_inline(counter):
    blocks = [
        Block("heading", "FAQ", ("FAQ",)),
        Block("heading", "Do you work on Sundays?", ("FAQ", "Do you work on Sundays?")),
        Block("paragraph", "Yes, 10am to 4pm.", ("FAQ", "Do you work on Sundays?")),
        Block("heading", "Do you service Daikin?", ("FAQ", "Do you service Daikin?")),
        Block("paragraph", "Yes, all major brands including Daikin, Mitsubishi and Panasonic.", ("FAQ", "Do you service Daikin?")),
    ]
    chunks = Chunker(counter, target_tokens=200, overlap_tokens=20, min_section_tokens=12).chunk(blocks)
    assert len(chunks) == 1
    assert chunks[0].heading == "FAQ"
    assert chunks[0].text == (
        "FAQ\n\nDo you work on Sundays?\nYes, 10am to 4pm.\n\n"
        "Do you service Daikin?\nYes, all major brands including Daikin, Mitsubishi and Panasonic."
    )


def test_overlap_carries_whole_trailing_paragraphs_within_budget(counter):
    rng = random.Random(7)
    paragraphs = [" ".join(sentence(rng) for _ in range(2)) for _ in range(30)]
    blocks = [Block("paragraph", p, ("Manual",)) for p in paragraphs]
    chunks = Chunker(counter, target_tokens=150, overlap_tokens=50).chunk(blocks)
    assert len(chunks) > 3
    for previous, current in zip(chunks, chunks[1:]):
        prev_paras = body(previous.text).split("\n\n")
        cur_paras = body(current.text).split("\n\n")
        shared = [p for p in cur_paras if p in prev_paras]
        assert shared, "consecutive chunks must overlap"
        assert shared == prev_paras[-len(shared):] == cur_paras[: len(shared)]  # a whole trailing run
        assert counter.count("\n\n".join(shared)) <= 50
    # Nothing is lost: every paragraph appears in some chunk.
    everything = "\n".join(c.text for c in chunks)
    assert all(p in everything for p in paragraphs)


def test_oversized_paragraph_is_split_on_sentence_boundaries(counter):
    sentences = [f"Sentence number {i} explains one more detail about the filter cleaning service." for i in range(40)]
    chunks = Chunker(counter, target_tokens=120, overlap_tokens=30).chunk([Block("paragraph", " ".join(sentences), ("Care",))])
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.token_count <= 120
        assert body(chunk.text).endswith("service.")  # never cut mid-sentence
        assert body(chunk.text).startswith("Sentence number")
    everything = " ".join(body(c.text) for c in chunks)
    assert all(s in everything for s in sentences)


def test_run_on_text_without_sentences_is_still_kept_under_the_target(counter):
    chunks = Chunker(counter, target_tokens=64, overlap_tokens=0).chunk([Block("paragraph", "word " * 400)])
    assert len(chunks) > 1
    assert all(c.token_count <= 64 for c in chunks)
    assert sum(body_text.count("word") for body_text in (c.text for c in chunks)) == 400


def test_oversized_row_splits_at_fields_and_an_unsplittable_row_is_the_only_exception(counter):
    fields = "; ".join(f"Field {i}: value number {i} for this very wide record" for i in range(30))
    unsplittable = "Notes: " + "x" * 2000  # no field or sentence boundary at all
    blocks = [Block("table_row", fields, ("Table",)), Block("table_row", unsplittable, ("Table",))]
    chunks = Chunker(counter, target_tokens=100, overlap_tokens=0).chunk(blocks)
    oversized = [c for c in chunks if c.token_count > 100]
    assert len(oversized) == 1 and unsplittable in oversized[0].text
    pieces = [body(c.text) for c in chunks if c is not oversized[0]]
    assert len(pieces) > 1
    for piece in pieces:
        assert piece.startswith("Field ") and piece.rstrip(";").endswith("record")  # cut between fields only


def test_documents_without_headings_have_no_prefix(counter):
    chunks = Chunker(counter).chunk([Block("paragraph", "Just one line."), Block("heading", "Empty", ("Empty",))])
    assert [(c.heading, c.text) for c in chunks] == [("", "Just one line.")]
    assert Chunker(counter).chunk([]) == []


def test_rejects_nonsensical_parameters(counter):
    with pytest.raises(ValueError):
        Chunker(counter, target_tokens=16)
    with pytest.raises(ValueError):
        Chunker(counter, target_tokens=100, overlap_tokens=60)
