"""Turn a business's documents into a flat list of blocks the chunker can pack.

A block is one paragraph, one table row (rendered as a readable
``Header: value; Header: value`` record, so a retrieved row still says what each
value means) or one heading, each tagged with the heading path above it. Parsing
is blocking CPU work: callers run it in a thread.
"""
from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rag.blocks import Block, BlockKind

if TYPE_CHECKING:
    from bs4 import Tag

__all__ = [
    "SUPPORTED_SUFFIXES", "Block", "BlockKind", "DocumentLoadError", "UnsupportedDocument",
    "load_document", "load_document_bytes", "row_record",
]  # fmt: skip

SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".csv"})


class DocumentLoadError(Exception):
    """A document could not be read; ``file_name`` says which."""

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__(f"{file_name}: {reason}")
        self.file_name = file_name
        self.reason = reason


class UnsupportedDocument(DocumentLoadError):
    """The file type is not one we can read."""


def load_document(path: Path) -> list[Block]:
    """Read and parse a file from disk."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentLoadError(path.name, f"cannot read file: {exc.strerror or exc}") from exc
    return load_document_bytes(path.name, data)


def load_document_bytes(file_name: str, data: bytes) -> list[Block]:
    """Parse already-read bytes; the suffix of ``file_name`` picks the parser."""
    parser = _PARSERS.get(Path(file_name).suffix.lower())
    if parser is None:
        raise UnsupportedDocument(file_name, f"unsupported file type {Path(file_name).suffix or '(none)'!r}")
    try:
        return parser(data)
    except DocumentLoadError:
        raise
    except Exception as exc:  # third-party parsers raise anything on malformed input
        raise DocumentLoadError(file_name, f"could not parse ({type(exc).__name__}: {exc})") from exc


# --- shared helpers -----------------------------------------------------------

_SPACES = re.compile(r"[ \t\u00a0\u200b]+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


class _HeadingStack:
    """Tracks the heading path as headings of various levels arrive."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> tuple[str, ...]:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._stack)


def row_record(headers: list[str], values: list[str]) -> str:
    """``Header: value; Header: value``, skipping empty values; bare values if there is no header."""
    parts = []
    for i, value in enumerate(values):
        value = _clean(value)
        if not value:
            continue
        header = _clean(headers[i]) if i < len(headers) else ""
        parts.append(f"{header}: {value}" if header and header != value else value)
    return "; ".join(parts)


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, line breaks inside kept."""
    out = []
    for para in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [_clean(line) for line in para.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            out.append(joined)
    return out


# --- plain text ----------------------------------------------------------------


def _parse_txt(data: bytes) -> list[Block]:
    return [Block("paragraph", p) for p in _paragraphs(_decode_text(data))]


# --- markdown ------------------------------------------------------------------

_MD_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_MD_LIST_ITEM = re.compile(r"^\s{0,3}([-*+]|\d{1,3}[.)])\s+")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_MD_CODE = re.compile(r"`([^`]+)`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _md_inline(text: str) -> str:
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    return _MD_CODE.sub(r"\1", text)


def _md_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [_md_inline(c.strip()) for c in re.split(r"(?<!\\)\|", line)]


def _parse_markdown(data: bytes) -> list[Block]:
    text = _HTML_COMMENT.sub("", _decode_text(data)).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter
        for end in range(1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                lines = lines[end + 1 :]
                break
    blocks: list[Block] = []
    headings = _HeadingStack()
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            para = _clean(" ".join(_md_inline(b) for b in buffer))
            if para:
                blocks.append(Block("paragraph", para, headings.path))
            buffer.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _MD_FENCE.match(line)
        if fence:
            flush()
            code: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                code.append(lines[i].rstrip())
                i += 1
            body = "\n".join(code).strip()
            if body:
                blocks.append(Block("paragraph", body, headings.path))
            i += 1
            continue
        atx = _MD_ATX.match(line)
        if atx:
            flush()
            title = _clean(_md_inline(atx.group(2)))
            if title:
                path = headings.push(len(atx.group(1)), title)
                blocks.append(Block("heading", title, path))
            i += 1
            continue
        if len(buffer) == 1 and _MD_SETEXT.match(line) and not _MD_LIST_ITEM.match(buffer[0]):
            title = _clean(_md_inline(buffer.pop()))
            path = headings.push(1 if line.strip().startswith("=") else 2, title)
            blocks.append(Block("heading", title, path))
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _MD_TABLE_SEP.match(lines[i + 1]) and "|" in lines[i + 1]:
            flush()
            header = _md_cells(line)
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                record = row_record(header, _md_cells(lines[i]))
                if record:
                    blocks.append(Block("table_row", record, headings.path))
                i += 1
            continue
        if not line.strip() or _MD_RULE.match(line):
            flush()
        elif _MD_LIST_ITEM.match(line):
            flush()
            buffer.append(line.strip())
        else:
            buffer.append(line.strip())
        i += 1
    flush()
    return blocks


# --- HTML ----------------------------------------------------------------------

_DROP_TAGS = [
    "nav", "footer", "script", "style", "aside", "form", "noscript", "template", "svg",
    "iframe", "button", "select", "input", "textarea", "canvas", "object", "embed", "dialog", "head",
]  # fmt: skip
_BOILERPLATE_WORDS = frozenset(
    "nav navbar navigation menu breadcrumb breadcrumbs cookie cookies consent gdpr footer "
    "sidebar social share sharing newsletter subscribe popup modal skip masthead topbar".split()
)
_BOILERPLATE_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
)
_NEVER_BOILERPLATE = frozenset({"html", "body", "main", "article"})  # state classes like "nav-open" live here
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
_TEXT_BLOCK_TAGS = frozenset({"p", "li", "dt", "dd", "blockquote", "pre", "figcaption", "address", "summary"})
_STRUCTURE_TAGS = frozenset({"table", "p", "div", "ul", "ol", "dl", "section", "article", *_HEADING_TAGS})
_CONTAINER_TAGS = frozenset(
    "html body main div section article header ul ol dl center details fieldset figure hgroup "
    "tbody thead tfoot tr td th".split()
)


def _looks_like_boilerplate(tag: Tag) -> bool:
    if tag.attrs is None:
        return False
    if tag.get("role", "").strip().lower() in _BOILERPLATE_ROLES:
        return True
    if tag.has_attr("hidden") or tag.get("aria-hidden", "").lower() == "true":
        return True
    if re.search(r"display\s*:\s*none", tag.get("style", ""), re.I):
        return True
    classes = tag.get("class", [])
    names = " ".join([*(classes if isinstance(classes, list) else [classes]), tag.get("id", "")]).lower()
    return any(word in _BOILERPLATE_WORDS for word in re.split(r"[^a-z0-9]+", names) if word)


def _parse_html(data: bytes) -> list[Block]:
    # Parsers are imported by the loader that needs them: a question never pays for PDF and DOCX code.
    from bs4 import BeautifulSoup, NavigableString, Tag
    from bs4.element import PreformattedString

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        if not tag.decomposed:
            tag.decompose()
    # <header> is page chrome at the top level but the title block inside an article.
    for tag in soup.find_all("header"):
        if not tag.decomposed and tag.find_parent(["article", "main", "section"]) is None:
            tag.decompose()
    for tag in soup.find_all(True):
        if tag.name not in _NEVER_BOILERPLATE and not tag.decomposed and _looks_like_boilerplate(tag):
            tag.decompose()
    root = soup.find("main") or soup.body or soup

    blocks: list[Block] = []
    headings = _HeadingStack()
    inline: list[str] = []

    def flush() -> None:
        text = _clean(" ".join("".join(inline).split()))
        inline.clear()
        if text:
            blocks.append(Block("paragraph", text, headings.path))

    def text_of(tag: Tag) -> str:
        return _clean(" ".join(tag.get_text(" ").split()))

    def table(tag: Tag) -> None:
        rows = [tr for tr in tag.find_all("tr") if tr.find_parent("table") is tag]
        grid: list[tuple[list[str], bool]] = []
        for tr in rows:
            cells, all_th = [], True
            for cell in tr.find_all(["td", "th"], recursive=False):
                all_th &= cell.name == "th"
                span = int(cell.get("colspan", 1)) if str(cell.get("colspan", "1")).isdigit() else 1
                cells.extend([text_of(cell)] * max(1, min(span, 50)))
            if any(cells):
                grid.append((cells, all_th))
        layout = max((len(c) for c, _ in grid), default=0) <= 1 or tag.find(["table", "p", "ul", "ol", "div"])
        if layout:  # a layout table: read its cells as ordinary content
            walk(tag)
            return
        caption = tag.find("caption")
        path = headings.path + ((text_of(caption),) if caption and text_of(caption) else ())
        header: list[str] = []
        if grid and (grid[0][1] or tag.find("thead")):
            header = grid.pop(0)[0]
        for cells, _ in grid:
            record = row_record(header, cells)
            if record:
                blocks.append(Block("table_row", record, path))

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, PreformattedString):
                    inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADING_TAGS:
                flush()
                title = text_of(child)
                if title:
                    blocks.append(Block("heading", title, headings.push(_HEADING_TAGS[name], title)))
            elif name == "table":
                flush()
                table(child)
            elif name == "br":
                inline.append(" ")
            elif name in _TEXT_BLOCK_TAGS and not child.find(_STRUCTURE_TAGS):
                flush()
                inline.append(child.get_text("\n" if name == "pre" else " "))
                flush()
            elif name in _CONTAINER_TAGS or name in _TEXT_BLOCK_TAGS:
                flush()
                walk(child)
                flush()
            elif child.find(_STRUCTURE_TAGS):
                walk(child)  # an inline element wrapping blocks, e.g. <a><div>…</div></a>
            else:
                inline.append(child.get_text(" "))

    walk(root)
    flush()
    return blocks


# --- PDF -----------------------------------------------------------------------

_SENTENCE_END = tuple(".!?:;。！？")


def _parse_pdf(data: bytes) -> list[Block]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ValueError("the PDF is password-protected")
    pages: list[tuple[int, list[str], dict[str, float]]] = []
    size_by_chars: Counter[float] = Counter()
    for number, page in enumerate(reader.pages, start=1):
        sizes: dict[str, float] = {}

        def visit(text, cm, tm, _font, font_size, sizes=sizes) -> None:  # noqa: ANN001
            fragment = _clean(text)
            if fragment and font_size:
                scale = (abs(tm[3]) or 1.0) * (abs(cm[3]) or 1.0)
                size = round(float(font_size) * scale, 1)
                sizes[fragment] = size
                size_by_chars[size] += len(fragment)

        text = page.extract_text(visitor_text=visit) or ""
        pages.append((number, text.split("\n"), sizes))
    if not size_by_chars and not any("".join(lines).strip() for _, lines, _ in pages):
        return []
    body_size = size_by_chars.most_common(1)[0][0] if size_by_chars else 0.0
    heading_sizes = sorted({s for s in size_by_chars if body_size and s >= body_size * 1.15}, reverse=True)

    blocks: list[Block] = []
    headings = _HeadingStack()
    for number, lines, sizes in pages:
        stripped = [_clean(line) for line in lines]
        long_lines = [len(line) for line in stripped if len(line) > 20]
        typical = statistics.median(long_lines) if long_lines else 0
        paragraph: list[str] = []

        def flush(number: int = number) -> None:
            if paragraph:
                text = ""
                for line in paragraph:
                    if text.endswith("-") and line[:1].islower():
                        text = text[:-1] + line  # re-join a hyphenated line break
                    else:
                        text = f"{text} {line}" if text else line
                blocks.append(Block("paragraph", text, headings.path, page=number))
                paragraph.clear()

        for line in stripped:
            if not line:
                flush()
                continue
            size = sizes.get(line)
            if size in heading_sizes and len(line) <= 150:
                flush()
                path = headings.push(heading_sizes.index(size) + 1, line)
                blocks.append(Block("heading", line, path, page=number))
                continue
            paragraph.append(line)
            if line.endswith(_SENTENCE_END) and typical and len(line) < 0.8 * typical:
                flush()  # a short line ending a sentence closes its paragraph
        flush()
    return blocks


# --- DOCX ----------------------------------------------------------------------

_DOCX_HEADING = re.compile(r"^heading\s*(\d)$", re.I)


def _parse_docx(data: bytes) -> list[Block]:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []
    headings = _HeadingStack()
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = []
            for row in item.rows:
                seen, cells = set(), []
                for cell in row.cells:
                    if id(cell._tc) in seen:  # horizontally merged cells repeat
                        continue
                    seen.add(id(cell._tc))
                    cells.append(_clean(" ".join(cell.text.split())))
                if any(cells):
                    rows.append(cells)
            header = rows.pop(0) if len(rows) > 1 else []
            for cells in rows:
                record = row_record(header, cells)
                if record:
                    blocks.append(Block("table_row", record, headings.path))
            continue
        text = _clean(item.text.replace("\n", " "))
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        match = _DOCX_HEADING.match(style.strip())
        if style.strip().lower() == "title" or match:
            level = int(match.group(1)) if match else 0
            blocks.append(Block("heading", text, headings.push(level, text)))
        else:
            blocks.append(Block("paragraph", text, headings.path))
    return blocks


# --- CSV -----------------------------------------------------------------------


_CSV_DELIMITERS = ",;\t|"


def _parse_csv(data: bytes) -> list[Block]:
    text = _decode_text(data)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(text[:8192], delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:  # the sniffer gives up on ragged rows; the header line is a good witness
        delimiter = ""
    if not delimiter or delimiter not in first_line:
        delimiter = max(_CSV_DELIMITERS, key=first_line.count)
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in row)]
    if not rows:
        return []
    header = [h.strip() or f"Column {i + 1}" for i, h in enumerate(rows[0])]
    blocks = []
    for row in rows[1:]:
        names = header + [f"Column {i + 1}" for i in range(len(header), len(row))]
        record = row_record(names, row)
        if record:
            blocks.append(Block("table_row", record))
    return blocks


_PARSERS: dict[str, Callable[[bytes], list[Block]]] = {
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".txt": _parse_txt,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
    ".csv": _parse_csv,
}
