"""Checks on knowledge-base uploads before a single byte is stored or parsed for real.

The declared type means nothing: the file must *be* what its name says (PDF magic,
a DOCX zip with a Word document inside, text that decodes as text). Archive and PDF
bombs are refused by their structure — page count, unpacked size and per-member
compression ratio — read from headers, before any parser expands them.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePath


ALLOWED_SUFFIXES = (".pdf", ".docx", ".txt", ".md", ".markdown", ".html", ".htm", ".csv")
_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".csv"}
_BINARY_MAGIC = (b"%PDF-", b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe",
                 b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf", b"\xd0\xcf\x11\xe0")
_RATIO_CHECK_MIN_BYTES = 1024 * 1024  # small members may compress very well legitimately
_MAX_ZIP_MEMBERS = 2000
_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


class UploadRejected(Exception):
    """The upload is refused; ``status`` is the HTTP status to answer with (413, 415 or 422)."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pdf_pages: int
    max_unpacked_bytes: int
    max_compression_ratio: float


def safe_file_name(raw: str | None) -> str:
    """A plain file name (no folders, no control or shell characters) with an allowed suffix."""
    name = PurePath((raw or "").replace("\\", "/")).name.strip()
    name = _SAFE_NAME.sub("_", name).strip(" .")[:120]
    suffix = PurePath(name).suffix.lower()
    if not name or suffix not in ALLOWED_SUFFIXES:
        raise UploadRejected(
            f"file name must end in one of {' '.join(ALLOWED_SUFFIXES)} (got {suffix or 'no extension'})", 415
        )
    return name


def check_upload(file_name: str, data: bytes, limits: UploadLimits) -> None:
    """Raise :class:`UploadRejected` unless ``data`` really is a safe file of ``file_name``'s type.

    Blocking (PDF and zip headers are read): run it in a thread.
    """
    if len(data) > limits.max_bytes:
        raise UploadRejected(f"file is larger than {limits.max_bytes} bytes", 413)
    if not data:
        raise UploadRejected("file is empty")
    suffix = PurePath(file_name).suffix.lower()
    if suffix == ".pdf":
        _check_pdf(data, limits)
    elif suffix == ".docx":
        _check_docx(data, limits)
    elif suffix in _TEXT_SUFFIXES:
        _check_text(data, suffix)
    else:
        raise UploadRejected(f"unsupported file type {suffix!r}", 415)


def _check_pdf(data: bytes, limits: UploadLimits) -> None:
    if not data.startswith(b"%PDF-"):
        raise UploadRejected("content is not a PDF (it does not start with %PDF-)", 415)
    from pypdf import PdfReader  # loaded by the first upload, not by every command
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UploadRejected("the PDF is password-protected")
        pages = len(reader.pages)
    except UploadRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UploadRejected(f"the PDF is damaged ({type(exc).__name__})") from exc
    if pages > limits.max_pdf_pages:
        raise UploadRejected(f"the PDF has {pages} pages; at most {limits.max_pdf_pages} are accepted", 413)


def _check_docx(data: bytes, limits: UploadLimits) -> None:
    if not data.startswith(b"PK\x03\x04"):
        raise UploadRejected("content is not a DOCX file (not a zip archive)", 415)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise UploadRejected("the DOCX archive is damaged") from exc
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names or "word/document.xml" not in names:
        raise UploadRejected("content is a zip archive but not a Word document", 415)
    if len(members) > _MAX_ZIP_MEMBERS:
        raise UploadRejected(f"the DOCX holds {len(members)} files; at most {_MAX_ZIP_MEMBERS} are accepted", 413)
    unpacked = sum(m.file_size for m in members)
    if unpacked > limits.max_unpacked_bytes:
        raise UploadRejected(
            f"the DOCX unpacks to {unpacked} bytes; at most {limits.max_unpacked_bytes} are accepted", 413
        )
    for member in members:
        if member.file_size >= _RATIO_CHECK_MIN_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise UploadRejected(
                    f"the DOCX member {member.filename!r} is compressed {ratio:.0f}:1 (a zip bomb?)", 413
                )


def _check_text(data: bytes, suffix: str) -> None:
    head = data[:8192]
    if head.startswith(_BINARY_MAGIC) or (b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise UploadRejected(f"content is binary, not a {suffix} text file", 415)
    try:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            data.decode("utf-16")
        else:
            data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise UploadRejected(f"content is not readable text ({exc.reason})", 415) from exc
