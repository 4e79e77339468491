"""Signed links for staff attachments, served from the Telegram file through the fake Bot API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import utcnow
from channels.telegram.client import build_bot
from escalation.media import LINK_LIFETIME, MediaLinks, StaffFile, StaffMediaHandler, signing_key
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI

KEY = signing_key(TEST_TOKEN)
PDF = b"%PDF-1.4\n% a tiny quotation\n"


def test_links_round_trip_and_refuse_tampering_and_old_age():
    links = MediaLinks(KEY, "https://help.example.sg/")
    link = links.link(StaffFile("BQACAgUAAx0", "application/pdf", "quote.pdf"))
    assert link.startswith("https://help.example.sg/media/staff/")
    token = link.rsplit("/", 1)[1]
    assert links.read(token) == StaffFile("BQACAgUAAx0", "application/pdf", "quote.pdf")
    body, signature = token.split(".")
    assert links.read(body[:-2] + "AA." + signature) is None
    assert links.read(body + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B")) is None
    assert links.read("not-a-token") is None
    assert MediaLinks(signing_key("another-bot-token"), None).read(token) is None
    later = MediaLinks(KEY, None, clock=lambda: utcnow() + LINK_LIFETIME + timedelta(minutes=1))
    assert later.read(token) is None
    assert TEST_TOKEN not in link and "BQACAgUAAx0" not in link.split(".")[-1]


@pytest.fixture
async def served():
    async with FakeTelegramAPI() as fake:
        fake.add_file("BQACAgUAAx0", PDF, "documents/quote.pdf")
        fake.add_file("BAhtml", b"<script>alert(1)</script>", "documents/page.html")
        async with build_bot(TEST_TOKEN, api_base_url=fake.url) as bot:
            links = MediaLinks(KEY, None)
            app = web.Application()
            app.add_routes(StaffMediaHandler(bot, links).routes())
            async with TestClient(TestServer(app)) as client:
                yield client, links, fake
        assert fake.errors == []


async def test_a_signed_link_serves_the_telegram_file(served):
    client, links, _fake = served
    response = await client.get(links.link(StaffFile("BQACAgUAAx0", "application/pdf", "quote.pdf")))
    assert response.status == 200 and await response.read() == PDF
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == 'inline; filename="quote.pdf"'


async def test_active_content_is_only_ever_a_download(served):
    client, links, _fake = served
    response = await client.get(links.link(StaffFile("BAhtml", "text/html", "page.html")))
    assert response.status == 200 and response.content_type == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_forged_or_vanished_files_are_refused(served):
    client, links, _fake = served
    assert (await client.get("/media/staff/forged.token")).status == 404
    gone = await client.get(links.link(StaffFile("no-such-file", "image/jpeg", "x.jpg")))
    assert gone.status == 502
