"""Split a chunk's text into quotable units: sentences, list items, table rows.

An extractive answer may only quote whole units, so where we cut decides what a
customer reads. Documents arrive hard-wrapped (Markdown, plain text), so we
first rebuild paragraphs, then split prose into sentences (Latin ``. ! ?`` and
CJK ``。！？``), while list items, ``label: value`` lines and table rows stay
whole — "Chocolate cake (1 kg): $48 each" must never be cut in half.
Headings are not quoted; they become the context of the units below them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class UnitKind(StrEnum):
    SENTENCE = "sentence"
    ITEM = "item"  # list item or a short "label: value" line
    ROW = "row"  # table row (Markdown pipes or CSV-like)


@dataclass(frozen=True)
class Unit:
    text: str  # verbatim, minus list markers, emphasis marks and table pipes
    kind: UnitKind
    position: int  # order within the chunk
    block: int  # paragraph/list/table it belongs to; adjacency is only meaningful inside one
    heading: str = ""  # nearest heading above it
    table_header: str = ""  # header row of its table, for rows


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•▪◦·]|\d{1,2}[.)])\s+")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_LABEL_VALUE = re.compile(r"^[^.!?。！？:：]{1,60}[:：]\s*\S")
_RECORD_FIELD = re.compile(r"(?:^|; )[^;:]{1,40}: ")
_PATH_SEPARATOR = " > "  # how ingestion joins a heading path
_SENTENCE_END = re.compile(r"[.!?。！？:：;；]\s*$")
_UPPER_HEADING = re.compile(r"^(?=.*[A-Z]{3})[A-Z0-9][A-Z0-9 &,'/()\-–—]*$")  # "OPENING HOURS" in plain text

# Sentence boundary: terminal punctuation, then space and a capital/digit/opening mark;
# or a CJK terminal mark, whatever follows.
_LATIN_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$]|[-•] )")
_CJK_BOUNDARY = re.compile(r"(?<=[。！？])")
_INLINE_BULLET = re.compile(r"^[-•]\s+")  # PDF text keeps list markers inline: "... fees. - 90-day warranty: ..."
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_SHORT_LATIN = 45
_SHORT_CJK = 15
_ABBREVIATIONS = frozenset(
    "e.g i.e etc mr mrs ms dr no nos reg st ave rd pte ltd co inc vs approx min max blk tel fig jan feb mar apr "
    "jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)


def clean_inline(text: str) -> str:
    """Drop Markdown emphasis marks; keep every character of the content."""
    return _EMPHASIS.sub(r"\2", text).strip()


def split_sentences(paragraph: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _LATIN_BOUNDARY.finditer(paragraph):
        before = paragraph[start : match.start()].rstrip("\"')]")
        last_word = re.split(r"\s", before.strip())[-1].rstrip(".").lower() if before.strip() else ""
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue
        pieces.append(paragraph[start : match.start()] + match.group(0).strip())
        start = match.end()
    pieces.append(paragraph[start:])
    sentences: list[str] = []
    for piece in pieces:
        sentences.extend(part for part in _CJK_BOUNDARY.split(piece))
    return [_INLINE_BULLET.sub("", s.strip()) for s in sentences if s.strip()]


def _is_table_row(line: str) -> bool:
    return line.count("|") >= 2


def _table_cells(line: str) -> str:
    cells = [clean_inline(c) for c in line.strip().strip("|").split("|")]
    return " | ".join(c for c in cells)


def _is_csv_row(line: str) -> bool:
    commas = line.count(",")
    spaced = line.count(", ")
    return commas >= 3 and spaced * 2 < commas and not _SENTENCE_END.search(line) and len(line) < 300


def _is_record(line: str) -> bool:
    """A table row as ingestion renders it: ``Header: value; Header: value``."""
    return len(_RECORD_FIELD.findall(line)) >= 2 and "; " in line and len(line) < 600


def _last_component(path: str) -> str:
    return path.rsplit(_PATH_SEPARATOR, 1)[-1].strip()


def _joins_next(line: str, next_line: str, wrap_width: int) -> bool:
    """Whether a hard-wrapped ``line`` continues on ``next_line``."""
    if _SENTENCE_END.search(line) or _BULLET.match(next_line) or _is_table_row(next_line):
        return False
    if _HEADING.match(next_line):
        return False
    # A line well short of the wrap width ended on purpose ("Hotline: +65 6234 5678").
    return wrap_width >= 40 and len(line) >= 0.7 * wrap_width


def segment(text: str, heading: str = "") -> list[Unit]:
    """Quotable units of ``text`` in document order; ``heading`` is the chunk's own."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    wrap_width = max((len(line) for line in lines), default=0)
    units: list[Unit] = []
    block = 0
    table_header = ""
    i = 0

    def add(unit_text: str, kind: UnitKind, header: str = "") -> None:
        if not unit_text:
            return
        unit_block = block
        previous = units[-1] if units else None
        if previous and kind is not UnitKind.SENTENCE and previous.kind is kind and previous.heading == current_heading:
            unit_block = previous.block  # rows/items of one list stay together across blank lines
        units.append(Unit(unit_text, kind, len(units), unit_block, current_heading, header))

    heading_path = heading.strip()
    current_heading = _last_component(heading_path)
    last_line_mergeable = False
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            block += 1
            table_header = ""
            i += 1
            last_line_mergeable = False
            continue
        starts_paragraph = i == 0 or not lines[i - 1].strip()
        continues = i + 1 < len(lines) and bool(lines[i + 1].strip())
        if (heading_path and line == heading_path) or (
            # Ingestion puts a section's heading path (or an FAQ question) on the line above its text.
            starts_paragraph
            and continues
            and len(line) < 200
            and not _is_table_row(line)
            and not _BULLET.match(lines[i + 1])
            and (_PATH_SEPARATOR in line or line.endswith(("?", "？")) or _is_title(line))
        ):
            current_heading = _last_component(_BULLET.sub("", line, count=1))
            block += 1
            i += 1
            continue
        heading_match = _HEADING.match(line)
        if not any(ch.isalnum() for ch in line):  # "=====" rules and other decoration: nothing to quote
            i += 1
            continue
        bare = _BULLET.sub("", line, count=1)  # "8. DATA PROTECTION OFFICER": a numbered plain-text heading
        if heading_match or (_UPPER_HEADING.match(bare) and len(bare) < 80):
            current_heading = clean_inline(heading_match.group(2) if heading_match else bare)
            block += 1
            i += 1
            continue
        if _is_table_row(line):
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if _TABLE_SEPARATOR.match(line):
                i += 1
                continue
            if _TABLE_SEPARATOR.match(following):
                table_header = _table_cells(line)  # context for its rows, not quoted alone
            else:
                add(_table_cells(line), UnitKind.ROW, table_header)
            i += 1
            continue
        if _is_record(line):
            add(line, UnitKind.ROW)
            i += 1
            continue
        if _is_csv_row(line) and not _BULLET.match(line):
            if not table_header and not re.search(r"\d", line):
                table_header = line  # a CSV header line: context for its rows
            else:
                add(line, UnitKind.ROW, table_header)
            i += 1
            continue
        # A paragraph or list item, possibly wrapped over several lines.
        is_item = bool(_BULLET.match(line))
        parts = [_BULLET.sub("", line, count=1) if is_item else line]
        while i + 1 < len(lines) and lines[i + 1].strip() and _joins_next(lines[i].strip(), lines[i + 1].strip(), wrap_width):
            i += 1
            parts.append(lines[i].strip())
        i += 1
        joined = clean_inline(_join_wrapped(parts))
        if is_item:
            add(joined, UnitKind.ITEM)
            last_line_mergeable = False
            continue
        if _LABEL_VALUE.match(joined) and len(joined) <= 160 and len(split_sentences(joined)) == 1:
            pieces, kind = [joined], UnitKind.ITEM
        else:
            pieces, kind = _merge_fragments(split_sentences(joined)), UnitKind.SENTENCE
        if last_line_mergeable and units and units[-1].block == block and _is_short(pieces[0]):
            # A short line continuing the previous one ("Transport fee: $10 per visit.").
            previous = units.pop()
            pieces[0] = f"{previous.text}\n{pieces[0]}"
            kind = previous.kind if len(pieces) == 1 else kind
        for piece in pieces:
            add(piece, kind)
        last_line_mergeable = True
    return units


def _is_title(line: str) -> bool:
    """A short unpunctuated line over a paragraph, e.g. "1. Workmanship warranty"."""
    bare = _BULLET.sub("", line, count=1)
    return len(bare) < 60 and not re.search(r"[.!?。！？:：,;，；]$|\d", bare) and not _LABEL_VALUE.match(bare)


def _is_short(sentence: str) -> bool:
    return len(sentence) < (_SHORT_CJK if _CJK.search(sentence) else _SHORT_LATIN)


def _merge_fragments(sentences: list[str]) -> list[str]:
    """Attach very short sentences ("Transport fee: $10 per visit.") to the one before:
    alone they lose what they are about."""
    merged: list[str] = []
    for sentence in sentences:
        short = len(sentence) < (_SHORT_CJK if _CJK.search(sentence) else _SHORT_LATIN)
        if merged and short:
            separator = "" if _CJK.search(merged[-1][-1:]) else " "
            merged[-1] = merged[-1] + separator + sentence
        else:
            merged.append(sentence)
    if len(merged) > 1 and len(merged[0]) < (_SHORT_CJK if _CJK.search(merged[0]) else _SHORT_LATIN):
        separator = "" if _CJK.search(merged[0][-1:]) else " "
        merged[:2] = [merged[0] + separator + merged[1]]  # "Not always." needs what follows
    return merged


def _join_wrapped(parts: list[str]) -> str:
    """Join wrapped lines; CJK text is wrapped without spaces."""
    out = parts[0]
    for part in parts[1:]:
        cjk_seam = re.search(r"[\u3000-\u9fff\uff00-\uffef]$", out) and re.match(r"[\u3000-\u9fff\uff00-\uffef]", part)
        out += part if cjk_seam else " " + part
    return out
