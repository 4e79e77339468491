"""The admin API over the real app: keys and scopes, uploads (good, oversized, disguised, bombs),
conversations, contacts (export, erase), tickets, analytics, metrics, docs, per-address limits."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import zipfile
from pathlib import Path

import aiohttp
import docx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fpdf import FPDF

from channels.messages import Channel, InboundMessage, new_id
from config.settings import load_settings
from supportlah.app import create_app
from supportlah.cli import main
from tests.harness import drain, running_container, web_message

ALL = frozenset({"kb:read", "kb:write", "tickets:read", "tickets:write", "contacts:read", "contacts:erase",
                 "analytics:read"})
GUIDE = b"# Gas top-up\n\nA gas top-up for an R32 unit costs $60. We also check for leaks.\n"


def pdf_bytes(pages: int, words: str | None = "Servicing price list") -> bytes:
    """A PDF of ``pages`` pages; ``words`` None gives pages without any text (like a scan)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for page in range(pages):
        pdf.add_page()
        if words is not None:
            pdf.cell(text=f"{words}, page {page + 1}")
    return bytes(pdf.output())


def docx_bytes(paragraph: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def form(name: str, data: bytes, **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=name, content_type="application/octet-stream")
    for key, value in fields.items():
        body.add_field(key, value)
    return body


class Admin:
    def __init__(self, client: TestClient, container, token: str) -> None:  # noqa: ANN001
        self.client, self.container, self.token = client, container, token

    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs):  # noqa: ANN003, ANN201
        return await self.client.request(method, path, headers=self.headers(token), **kwargs)


@pytest.fixture
async def admin(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", pdpa_consent_mode="notice",
                             admin_upload_max_bytes=300_000,
                             upload_max_pdf_pages=3, upload_max_unpacked_bytes=4_000_000,
                             upload_max_compression_ratio=50, rate_limit_ip_per_minute=10_000)
    async with running_container(settings, start_queue=False) as container:
        key = await container.privacy.keys.create("tests", ALL)
        async with TestClient(TestServer(create_app(container))) as client:
            yield Admin(client, container, key.token)


async def test_wrong_key_is_401_and_missing_scope_is_403(admin):
    anonymous = await admin.client.get("/api/admin/documents")
    assert anonymous.status == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    assert (await anonymous.json())["error"].startswith("a valid API key")
    assert (await admin.call("GET", "/api/admin/documents", token="slk_" + "x" * 43)).status == 401
    assert (await admin.call("GET", "/api/admin/documents", token="not-even-a-key")).status == 401

    reader = await admin.container.privacy.keys.create("reader", frozenset({"kb:read"}))
    assert (await admin.call("GET", "/api/admin/documents", token=reader.token)).status == 200
    denied = await admin.call("POST", "/api/admin/documents", token=reader.token, data=form("a.md", GUIDE))
    assert denied.status == 403 and "kb:write" in (await denied.json())["error"]
    assert (await admin.call("DELETE", "/api/admin/contacts/abc", token=reader.token)).status == 403
    assert (await admin.call("GET", "/metrics", token=reader.token)).status == 403
    assert (await admin.client.get("/metrics")).status == 401

    await admin.container.privacy.keys.revoke(reader.info.prefix)
    assert (await admin.call("GET", "/api/admin/documents", token=reader.token)).status == 401


async def test_document_lifecycle_upload_list_search_reindex_delete(admin):
    uploaded = await admin.call("POST", "/api/admin/documents",
                                data=form("gas-top-up.md", GUIDE, category="pricing", language="en"))
    assert uploaded.status == 201, await uploaded.text()
    document = (await uploaded.json())["document"]
    assert (document["name"], document["category"], document["language"]) == ("gas-top-up.md", "pricing", "en")
    word = await admin.call("POST", "/api/admin/documents", data=form("hours.docx", docx_bytes(
        "We are open Monday to Saturday from 9 am to 6 pm.")))
    assert word.status == 201, await word.text()

    listed = await (await admin.call("GET", "/api/admin/documents", params={"category": "pricing"})).json()
    assert [d["id"] for d in listed["documents"]] == [document["id"]]
    hits = await (await admin.call("GET", "/api/admin/kb/search", params={"q": "gas top-up price"})).json()
    assert hits["results"][0]["document"] == "gas-top-up.md"
    stats = await (await admin.call("GET", "/api/admin/kb/stats")).json()
    assert stats["documents"] == 2 and stats["indexed_chunks"] == stats["chunks"] > 0

    reindexed = await admin.call("POST", f"/api/admin/documents/{document['id']}/reindex")
    assert reindexed.status == 200 and (await reindexed.json())["document"]["id"] == document["id"]
    assert (await admin.call("DELETE", f"/api/admin/documents/{document['id']}")).status == 204
    assert (await admin.call("DELETE", f"/api/admin/documents/{document['id']}")).status == 404
    remaining = await (await admin.call("GET", "/api/admin/documents")).json()
    assert [d["name"] for d in remaining["documents"]] == ["hours.docx"]
    kb_dir = admin.container.settings.data_dir / "kb"
    assert sorted(p.name for p in kb_dir.iterdir()) == ["hours.docx"]

    actions = [e.action for e in await admin.container.privacy.audit.recent()]
    assert {"document.upload", "document.reindex", "document.delete"} <= set(actions)


@pytest.mark.parametrize("name, data, status, says", [
    ("big.txt", b"a" * 300_001, 413, "larger than"),
    ("price.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "not a PDF"),
    ("notes.txt", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, 415, "binary"),
    ("notes.md", b"MZ\x90\x00" + b"\x00" * 100, 415, "binary"),
    ("letter.docx", zip_bytes({"readme.txt": b"just a zip"}), 415, "not a Word document"),
    ("letter.docx", b"%PDF-1.4 not a zip", 415, "not a DOCX"),
    ("bomb.docx", zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>",
                             "word/media/a.bin": b"\x00" * 5_000_000}), 413, "unpacks to"),
    ("ratio.docx", zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>",
                              "word/media/a.bin": b"\x00" * 3_000_000}), 413, "zip bomb"),
    ("manual.pdf", pdf_bytes(4), 413, "4 pages"),
    ("setup.exe", b"MZ\x90\x00", 415, "must end in"),
    ("scan.pdf", pdf_bytes(1, words=None), 422, "no extractable text"),
])
async def test_rejected_uploads_say_why_and_leave_nothing_behind(admin, name, data, status, says):
    response = await admin.call("POST", "/api/admin/documents", data=form(name, data))
    assert response.status == status, await response.text()
    assert says in (await response.json())["error"]
    assert await admin.container.catalog.list_documents() == []
    assert await admin.container.index.count() == 0
    kb_dir = admin.container.settings.data_dir / "kb"
    assert not kb_dir.exists() or list(kb_dir.iterdir()) == []


async def test_malformed_upload_requests_are_400_or_415(admin):
    assert (await admin.call("POST", "/api/admin/documents", json={"file": "x"})).status == 415
    no_file = aiohttp.FormData({"category": "x"}, default_to_multipart=True)
    missing = await admin.call("POST", "/api/admin/documents", data=no_file)
    assert missing.status == 400 and "'file'" in (await missing.json())["error"]
    bad_language = await admin.call("POST", "/api/admin/documents", data=form("a.md", GUIDE, language="fr"))
    assert bad_language.status == 400


async def test_conversations_contacts_export_and_erase(admin):
    container = admin.container
    for words in ("Hi, my number is +65 9123 4567", "Can you come on Friday?"):
        await container.ingress.accept(web_message("visitor-api-0001", words))
        await drain(container)

    found = await (await admin.call("GET", "/api/admin/contacts",
                                    params={"channel": "web", "user_id": "visitor-api-0001"})).json()
    [contact] = found["contacts"]
    conversations = await (await admin.call("GET", "/api/admin/conversations")).json()
    [conversation] = conversations["conversations"]
    assert conversation["contact_id"] == contact["id"]
    transcript = await (await admin.call("GET", f"/api/admin/conversations/{conversation['id']}")).json()
    assert [m["text"] for m in transcript["messages"] if m["role"] == "user"] == [
        "Hi, my number is +65 9123 4567", "Can you come on Friday?"]
    assert (await admin.call("GET", "/api/admin/conversations/nope")).status == 404

    export = await admin.call("GET", f"/api/admin/contacts/{contact['id']}/export")
    assert export.status == 200
    body = await export.json()
    assert body["contact"]["channel_user_id"] == "visitor-api-0001" and body["consents"]

    erased = await admin.call("DELETE", f"/api/admin/contacts/{contact['id']}")
    assert erased.status == 200 and (await erased.json())["counts"]["inbound_messages"] == 2
    assert (await admin.call("DELETE", f"/api/admin/contacts/{contact['id']}")).status == 404
    assert (await admin.call("GET", f"/api/admin/contacts/{contact['id']}/export")).status == 404
    assert (await (await admin.call("GET", "/api/admin/contacts")).json())["contacts"] == []

    entries = await container.privacy.audit.recent()
    erasure = next(e for e in entries if e.action == "contact.erase")
    assert erasure.target == contact["id"] and erasure.actor.startswith("key:slk_")
    assert "contact.export" in {e.action for e in entries} and "conversation.view" in {e.action for e in entries}


async def test_tickets_list_and_update(admin):
    container = admin.container
    await container.ingress.accept(web_message("visitor-api-0002", "I want to talk to a person"))
    await drain(container)
    [ticket] = (await (await admin.call("GET", "/api/admin/tickets")).json())["tickets"]
    assert ticket["status"] == "open" and ticket["reason"] == "customer_request"

    changed = await admin.call("PATCH", f"/api/admin/tickets/{ticket['number']}",
                               json={"status": "claimed", "priority": "high", "assignee_id": "42",
                                     "assignee_name": "Siti"})
    assert changed.status == 200, await changed.text()
    assert {k: (await changed.json())["ticket"][k] for k in ("status", "priority", "assignee_name")} == {
        "status": "claimed", "priority": "high", "assignee_name": "Siti"}
    claimed = await (await admin.call("GET", "/api/admin/tickets", params={"status": "claimed"})).json()
    assert [t["id"] for t in claimed["tickets"]] == [ticket["id"]]
    assert (await admin.call("PATCH", f"/api/admin/tickets/{ticket['number']}", json={"status": "gone"})).status == 400
    assert (await admin.call("PATCH", f"/api/admin/tickets/{ticket['number']}", json={"number": 7})).status == 400
    assert (await admin.call("PATCH", f"/api/admin/tickets/{ticket['number'] + 1}",
                             json={"status": "closed"})).status == 404
    # The internal id is not an address: one path, one meaning.
    by_id = await admin.call("PATCH", f"/api/admin/tickets/{ticket['id']}", json={"status": "closed"})
    assert by_id.status == 400 and "#123" in (await by_id.json())["error"]
    one = await (await admin.call("GET", f"/api/admin/tickets/{ticket['number']}")).json()
    assert one["ticket"]["id"] == ticket["id"] and "admin_update" in [e["kind"] for e in one["ticket"]["events"]]
    assert "ticket.update" in {e.action for e in await container.privacy.audit.recent()}


async def test_analytics_and_metrics_carry_no_personal_data(admin):
    container = admin.container
    await container.ingress.accept(web_message("visitor-api-0003", "Call me at 91234567, NRIC S1234567D"))
    await container.ingress.accept(InboundMessage(channel=Channel.WHATSAPP, provider_message_id=new_id(),
                                                  sender_id="whatsapp:+6591234567", text="hello"))
    await drain(container)
    report = await (await admin.call("GET", "/api/admin/analytics")).json()
    assert report["messages"] == 2 and report["by_channel"] == {"web": 1, "whatsapp": 1}
    assert report["escalated"] + report["answered_without_person"] + report["failed"] == 2
    assert (await admin.call("GET", "/api/admin/analytics", params={"from": "2025-13-01"})).status == 400
    assert (await admin.call("GET", "/api/admin/analytics",
                             params={"from": "2025-02-01", "to": "2025-01-01"})).status == 400

    metrics = await admin.call("GET", "/metrics")
    assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    exposition = await metrics.text()
    assert 'supportlah_inbound_messages{channel="whatsapp",status=' in exposition
    assert 'supportlah_http_requests_total{method="GET",route="/api/admin/analytics",status="200"}' in exposition
    for secret in ("91234567", "6591234567", "S1234567D", "visitor-api-0003"):
        assert secret not in exposition


async def test_openapi_spec_and_docs_page(admin):
    spec = await (await admin.client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and "/api/admin/documents" in spec["paths"]
    ticket = spec["paths"]["/api/admin/tickets/{number}"]
    assert ticket["patch"]["parameters"][0]["schema"]["type"] == "integer"
    assert ticket["patch"]["requestBody"]["content"]["application/json"]["examples"]["resolve"]["value"]
    upload = spec["paths"]["/api/admin/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["properties"]["file"]["format"] == "binary"
    assert "| `contacts:read` |" in spec["info"]["description"]
    # Swagger UI, served from the installed package: no CDN, no inline script.
    page = await admin.client.get("/api/docs")
    html = await page.text()
    assert page.status == 200 and "/api/docs/assets/swagger-ui-bundle.js" in html and "<script>" not in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        served = await admin.client.get(f"/api/docs/assets/{asset}")
        assert served.status == 200 and len(await served.read()) > 1000, asset
    init = await (await admin.client.get("/api/docs/init.js")).text()
    assert 'url: "/api/openapi.json"' in init and "http" not in init.replace("/api/openapi.json", "")


async def test_the_readme_example_key_can_do_what_the_readme_shows(tmp_path):
    """The README's admin example: its key's scopes are enough for every call the README makes with it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Admin API", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    scopes = re.search(r"create-key .*--scopes ([\w: ]+)", block).group(1).split()
    calls = re.findall(r"curl (?:-X (\w+) )?.*?http://localhost:8000(/\S+?)['\s]", block)
    assert len(calls) >= 4, calls
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", rate_limit_ip_per_minute=10_000)
    async with running_container(settings, start_queue=False) as container:
        await container.ingress.accept(web_message("visitor-readme-1", "I want to talk to a person"))
        await drain(container)
        key = await container.privacy.keys.create("readme", frozenset(scopes))
        async with TestClient(TestServer(create_app(container))) as client:
            for method, path in calls:
                body = {"status": "claimed"} if method == "PATCH" else None
                response = await client.request(method or "GET", path, json=body,
                                                headers={"Authorization": f"Bearer {key.token}"})
                assert response.status == 200, (method, path, response.status, await response.text())


async def test_per_address_rate_limit(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", rate_limit_ip_per_minute=5)
    async with running_container(settings, start_queue=False) as container:
        async with TestClient(TestServer(create_app(container))) as client:
            statuses = [(await client.get("/api/chat/config")).status for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            limited = await client.get("/api/admin/documents")
            assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
            assert (await client.get("/healthz")).status == 200  # probes are never limited


@pytest.fixture
def logging_restored():
    """``main`` configures logging for a real run; put the test session's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_cli_creates_a_key_shown_once_and_revokes_it(tmp_path, capsys, logging_restored):
    data_dir = str(tmp_path / "data")
    assert main(["--data-dir", data_dir, "admin", "create-key", "--name", "ci", "--scopes", "kb:read",
                 "analytics:read"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("slk_") and len(token) > 40

    async def check() -> tuple:
        from config.sql import create_engine, session_factory
        from supportlah.admin.keys import ApiKeys

        settings = load_settings(_env_file=None, data_dir=tmp_path / "data")
        engine = create_engine(settings.sqlalchemy_url)
        try:
            keys = ApiKeys(session_factory(engine))
            info = await keys.authenticate(token)
            async with engine.connect() as connection:
                from sqlalchemy import text

                stored = (await connection.execute(text("SELECT token_sha256, prefix FROM api_keys"))).all()
            return info, stored
        finally:
            await engine.dispose()

    info, stored = asyncio.run(check())
    assert info is not None and info.scopes == {"kb:read", "analytics:read"}
    assert token not in json.dumps([list(r) for r in stored]) and stored[0][1] == token[:12]

    assert main(["--data-dir", data_dir, "admin", "list-keys"]) == 0
    assert token[:12] in capsys.readouterr().out
    assert main(["--data-dir", data_dir, "admin", "revoke-key", info.prefix]) == 0
    assert asyncio.run(check())[0] is None
    assert main(["--data-dir", data_dir, "admin", "create-key", "--scopes", "kb:everything"]) == 1
    assert "unknown scope" in capsys.readouterr().err
