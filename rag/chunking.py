"""Pack loader blocks into retrieval chunks of at most ``target_tokens`` tokens.

Rules, in order of importance:

* No chunk exceeds the target. The one documented exception: a single table row
  with no ``;``/sentence boundary that is longer than the target on its own (rows
  are records; cutting one mid-field would produce a fragment that misstates it).
* Table rows are never split, except that an oversized row is cut at ``;`` field or
  sentence boundaries as a last resort; oversized paragraphs are cut at line, then
  sentence boundaries, then (a run-on sentence) at word/character boundaries.
* Each heading section starts a new chunk, except that a section smaller than
  ``min_section_tokens`` is merged with the next one so a short FAQ answer or a
  one-line contact section does not become a near-empty chunk. A merged chunk is
  prefixed with the common heading path and keeps each section's own heading inline.
* Every chunk starts with its heading path (``Pricing > Delivery``) so a chunk
  read on its own — by the embedder, BM25 or the LLM — still says what it is about.
* Consecutive chunks of one section overlap by whole trailing paragraphs (or, if
  the last paragraph is large, whole trailing sentences) up to ``overlap_tokens``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.blocks import Block
from rag.hashing import content_hash
from rag.tokens import TokenCounter

HEADING_SEPARATOR = " > "
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？；])")
_FIELD_BOUNDARY = re.compile(r"(?<=;)\s+")
_MARGIN_TOKENS = 4  # BPE merges across a joint can shift a count by a token or two


@dataclass(frozen=True)
class TextChunk:
    position: int  # 0-based order within the document
    heading: str  # heading path joined with " > " ("" if none)
    text: str  # heading path line + body: exactly what is embedded, indexed and shown
    token_count: int
    content_hash: str
    page: int | None = None  # first page the chunk comes from (PDF)


@dataclass
class _Unit:
    text: str
    tokens: int
    kind: str  # "paragraph" | "table_row"
    joiner: str = "\n\n"  # what separates it from the previous unit of the same section
    page: int | None = None


@dataclass
class _Section:
    path: tuple[str, ...]
    units: list[_Unit] = field(default_factory=list)


class Chunker:
    def __init__(
        self,
        counter: TokenCounter,
        *,
        target_tokens: int = 512,
        overlap_tokens: int = 100,
        min_section_tokens: int = 64,
    ) -> None:
        if target_tokens < 32:
            raise ValueError("target_tokens must be at least 32")
        if not 0 <= overlap_tokens < target_tokens // 2:
            raise ValueError("overlap_tokens must be >= 0 and below half the target")
        self.counter = counter
        self.target_tokens = target_tokens
        self.overlap_tokens = overlap_tokens
        self.min_section_tokens = min_section_tokens

    # --- public ---------------------------------------------------------------

    def chunk(self, blocks: list[Block]) -> list[TextChunk]:
        chunks: list[TextChunk] = []
        open_sections: list[_Section] = []  # sections of the chunk being filled

        def emit() -> None:
            if any(s.units for s in open_sections):
                text = self._render(open_sections)
                units = [u for s in open_sections for u in s.units]
                chunks.append(
                    TextChunk(
                        position=len(chunks),
                        heading=HEADING_SEPARATOR.join(_common_prefix([s.path for s in open_sections])),
                        text=text,
                        token_count=self.counter.count(text),
                        content_hash=content_hash(text),
                        page=next((u.page for u in units if u.page is not None), None),
                    )
                )
            open_sections.clear()

        for path, section_blocks in _sections(blocks):
            path = self._fit_path(path)
            units = self._units(section_blocks, path)
            if not units:
                continue
            if open_sections and self._body_tokens(open_sections) >= self.min_section_tokens:
                emit()
            section = _Section(path)
            open_sections.append(section)
            for unit in units:
                section.units.append(unit)
                if self.counter.count(self._render(open_sections)) <= self.target_tokens:
                    continue
                section.units.pop()
                if not section.units:  # did not fit after the previous (tiny) sections
                    open_sections.pop()
                    emit()
                    section = _Section(path, [unit])
                    open_sections.append(section)
                    continue
                carried = self._overlap(section.units)
                emit()
                section = _Section(path, [*carried, unit])
                while carried and self.counter.count(self._render([section])) > self.target_tokens:
                    carried.pop(0)
                    section.units = [*carried, unit]
                open_sections.append(section)
        emit()
        return chunks

    # --- units ----------------------------------------------------------------

    def _fit_path(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """Keep the heading prefix under a quarter of the budget (drop outer levels, then trim)."""
        limit = self.target_tokens // 4
        while len(path) > 1 and self.counter.count(HEADING_SEPARATOR.join(path)) > limit:
            path = path[1:]
        if path and self.counter.count(path[0]) > limit:
            path = (self._cut(path[0], limit)[0],)
        return path

    def _budget(self, path: tuple[str, ...]) -> int:
        prefix = HEADING_SEPARATOR.join(path)
        used = self.counter.count(prefix + "\n\n") if prefix else 0
        return self.target_tokens - used - _MARGIN_TOKENS

    def _units(self, blocks: list[Block], path: tuple[str, ...]) -> list[_Unit]:
        budget = self._budget(path)
        units: list[_Unit] = []
        for block in blocks:
            tokens = self.counter.count(block.text)
            if tokens <= budget:
                units.append(_Unit(block.text, tokens, block.kind, page=block.page))
            elif block.kind == "table_row":
                units.extend(self._split_row(block, budget))
            else:
                units.extend(self._split_paragraph(block, budget))
        return units

    def _split_row(self, block: Block, budget: int) -> list[_Unit]:
        pieces = [p for f in _FIELD_BOUNDARY.split(block.text) for p in _SENTENCE_BOUNDARY.split(f) if p.strip()]
        return self._pack_pieces(pieces, budget, "table_row", " ", block.page, hard_split=False)

    def _split_paragraph(self, block: Block, budget: int) -> list[_Unit]:
        units: list[_Unit] = []
        for line_no, line in enumerate(l for l in block.text.split("\n") if l.strip()):
            sentences = [s for s in _SENTENCE_BOUNDARY.split(line) if s.strip()]
            line_units = self._pack_pieces(sentences, budget, block.kind, " ", block.page, hard_split=True)
            if line_units and line_no:
                line_units[0].joiner = "\n"
            units.extend(line_units)
        if units:
            units[0].joiner = "\n\n"
        return units

    def _pack_pieces(
        self, pieces: list[str], budget: int, kind: str, joiner: str, page: int | None, *, hard_split: bool
    ) -> list[_Unit]:
        """Greedily join consecutive pieces into units of at most ``budget`` tokens."""
        expanded: list[str] = []
        for piece in pieces:
            if hard_split and self.counter.count(piece) > budget:
                expanded.extend(self._cut(piece, budget))
            else:
                expanded.append(piece.strip())
        units: list[_Unit] = []
        current = ""
        for piece in expanded:
            candidate = f"{current}{joiner}{piece}" if current else piece
            if current and self.counter.count(candidate) > budget:
                units.append(_Unit(current, self.counter.count(current), kind, joiner, page))
                current = piece
            else:
                current = candidate
        if current:
            units.append(_Unit(current, self.counter.count(current), kind, joiner, page))
        return units

    def _cut(self, text: str, budget: int) -> list[str]:
        """Last resort for run-on text: pieces of at most ``budget`` tokens, cut at a space if possible."""
        pieces: list[str] = []
        rest = text.strip()
        while rest:
            if self.counter.count(rest) <= budget:
                pieces.append(rest)
                break
            end = min(len(rest), budget * 4)
            while end > 1 and self.counter.count(rest[:end]) > budget:
                end = max(1, int(end * 0.9))
            space = rest.rfind(" ", 0, end)
            if space > end // 2:
                end = space
            pieces.append(rest[:end].strip())
            rest = rest[end:].strip()
        return [p for p in pieces if p]

    # --- packing ----------------------------------------------------------------

    def _overlap(self, units: list[_Unit]) -> list[_Unit]:
        """Whole trailing units (or trailing sentences of a large last paragraph) within the overlap budget."""
        if not self.overlap_tokens:
            return []
        carried: list[_Unit] = []
        used = 0
        for unit in reversed(units):
            if used + unit.tokens + 1 > self.overlap_tokens:
                break
            carried.insert(0, _Unit(unit.text, unit.tokens, unit.kind, unit.joiner, unit.page))
            used += unit.tokens + 1
        if carried or units[-1].kind == "table_row":
            return carried
        sentences = [s for s in _SENTENCE_BOUNDARY.split(units[-1].text) if s.strip()]
        tail: list[str] = []
        for sentence in reversed(sentences[1:]):  # never the whole paragraph: it did not fit
            tokens = self.counter.count(sentence)
            if used + tokens + 1 > self.overlap_tokens:
                break
            tail.insert(0, sentence.strip())
            used += tokens + 1
        if not tail:
            return []
        text = " ".join(tail)
        return [_Unit(text, self.counter.count(text), units[-1].kind, "\n\n", units[-1].page)]

    def _body_tokens(self, sections: list[_Section]) -> int:
        return sum(u.tokens for s in sections for u in s.units)

    @staticmethod
    def _render(sections: list[_Section]) -> str:
        common = _common_prefix([s.path for s in sections])
        parts: list[str] = []
        for section in sections:
            body = ""
            for unit in section.units:
                body = f"{body}{unit.joiner}{unit.text}" if body else unit.text
            own = section.path[len(common) :]
            parts.append(f"{HEADING_SEPARATOR.join(own)}\n{body}" if own and len(sections) > 1 else body)
        body = "\n\n".join(parts)
        prefix = HEADING_SEPARATOR.join(common)
        return f"{prefix}\n\n{body}" if prefix else body


def _sections(blocks: list[Block]) -> list[tuple[tuple[str, ...], list[Block]]]:
    """Consecutive content blocks sharing a heading path; heading blocks only delimit."""
    sections: list[tuple[tuple[str, ...], list[Block]]] = []
    for block in blocks:
        if block.kind == "heading":
            continue
        if sections and sections[-1][0] == block.heading_path:
            sections[-1][1].append(block)
        else:
            sections.append((block.heading_path, [block]))
    return sections


def _common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    if not paths:
        return ()
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix
