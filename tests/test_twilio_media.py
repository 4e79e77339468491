"""Media download: basic auth + redirect, streaming size limit, type by content, local storage layout."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from PIL import Image

from channels.messages import Attachment, AttachmentKind, utcnow
from channels.media import DOCX_MIME, MediaDownloadFailed, MediaTooLarge, MediaTypeNotAllowed, sniff_media_type
from channels.twilio.media import MediaFetcher
from tests.fakes.twilio_api import FakeTwilioApi

ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "media-auth-token"
LIMIT = 256 * 1024


@pytest.fixture
async def api():
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fetcher(tmp_path: Path):
    media = MediaFetcher(ACCOUNT_SID, AUTH_TOKEN, tmp_path / "media", LIMIT)
    yield media
    await media.close()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 90, 200)).save(out, format=fmt)
    return out.getvalue()


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Warranty card")
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph("Service report")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def plain_zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.exe", b"MZ" + b"\0" * 64)
    return out.getvalue()


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_download_follows_redirect_with_auth_and_stores_by_month(api, fetcher, tmp_path):
    data = jpeg_bytes()
    url = api.add_media("ME1", data, "image/jpeg")

    local = await fetcher.fetch(Attachment(kind=AttachmentKind.IMAGE, mime_type="image/jpeg", url=url))

    now = utcnow()
    path = Path(local.url)
    assert path.parent == tmp_path / "media" / f"{now:%Y}" / f"{now:%m}"
    assert path.suffix == ".jpg" and len(path.stem) == 32
    assert path.read_bytes() == data
    assert (local.kind, local.mime_type, local.size) == (AttachmentKind.IMAGE, "image/jpeg", len(data))
    assert api.media_requests == ["ME1"]
    assert api.errors == []


async def test_mime_type_comes_from_content_not_header(api, fetcher):
    url = api.add_media("ME2", docx_bytes(), "application/octet-stream")

    local = await fetcher.fetch(Attachment(kind=AttachmentKind.OTHER, mime_type="application/octet-stream", url=url))

    assert (local.kind, local.mime_type) == (AttachmentKind.DOCUMENT, DOCX_MIME)
    assert local.url.endswith(".docx")
    assert api.errors == []


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "chunked"])
async def test_oversized_media_is_rejected_and_nothing_is_kept(api, fetcher, tmp_path, send_length):
    url = api.add_media("BIG", b"\xff\xd8\xff" + b"\0" * (LIMIT + 10), "image/jpeg", send_length=send_length)

    with pytest.raises(MediaTooLarge, match=str(LIMIT)):
        await fetcher.fetch(Attachment(kind=AttachmentKind.IMAGE, mime_type="image/jpeg", url=url))

    assert stored_files(tmp_path / "media") == []
    assert api.errors == []


async def test_media_exactly_at_the_limit_is_accepted(api, fetcher):
    data = b"%PDF-1.4\n" + b"0" * (LIMIT - 9)
    url = api.add_media("EDGE", data, "application/pdf", send_length=False)

    local = await fetcher.fetch(Attachment(kind=AttachmentKind.DOCUMENT, url=url))

    assert local.size == LIMIT


@pytest.mark.parametrize(
    "data",
    [b"MZ\x90\x00" + b"\0" * 200, plain_zip_bytes(), b"<html><script>alert(1)</script></html>"],
    ids=["exe", "zip-not-docx", "html"],
)
async def test_disguised_content_is_rejected(api, fetcher, tmp_path, data):
    url = api.add_media("EVIL", data, "image/jpeg")

    with pytest.raises(MediaTypeNotAllowed):
        await fetcher.fetch(Attachment(kind=AttachmentKind.IMAGE, mime_type="image/jpeg", url=url))

    assert stored_files(tmp_path / "media") == []


async def test_missing_media_is_a_permanent_failure(api, fetcher):
    with pytest.raises(MediaDownloadFailed) as caught:
        await fetcher.fetch(Attachment(kind=AttachmentKind.IMAGE, url=f"{api.base_url}/media/GONE"))

    assert caught.value.retryable is False


async def test_wrong_credentials_are_refused_by_twilio(api, tmp_path):
    url = api.add_media("ME3", jpeg_bytes(), "image/jpeg")
    wrong = MediaFetcher(ACCOUNT_SID, "not-the-token", tmp_path / "media", LIMIT)
    try:
        with pytest.raises(MediaDownloadFailed, match="401"):
            await wrong.fetch(Attachment(kind=AttachmentKind.IMAGE, url=url))
    finally:
        await wrong.close()

    assert api.errors == ["GET /media/ME3: media fetched without valid basic auth"]


async def test_unreachable_host_is_retryable(fetcher, unused_tcp_port):
    with pytest.raises(MediaDownloadFailed) as caught:
        await fetcher.fetch(Attachment(kind=AttachmentKind.IMAGE, url=f"http://127.0.0.1:{unused_tcp_port}/m"))

    assert caught.value.retryable is True


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (jpeg_bytes(), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("GIF"), "image/gif"),
        (image_bytes("WEBP"), "image/webp"),
        (pdf_bytes(), "application/pdf"),
        (b"OggS\x00\x02" + b"\0" * 22 + b"OpusHead", "audio/ogg"),
        (b"\0\0\0\x20ftypM4A \0\0\0\0", "audio/mp4"),
        (b"\0\0\0\x20ftypisom\0\0\x02\0", "video/mp4"),
        (b"#!AMR\n\x3c", "audio/amr"),
        (docx_bytes(), DOCX_MIME),
        (b"MZ\x90\x00", None),
        (b"", None),
    ],
)
def test_sniffing_recognizes_allowed_types_only(data, mime):
    sniffed = sniff_media_type(data)
    assert (sniffed.mime_type if sniffed else None) == mime
