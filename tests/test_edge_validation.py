"""Bad input at the edges, on a real Postgres store: every malformed request is a 4xx with a
reason (never a 500) and stores nothing; text that is merely odd (NUL bytes, control
characters, too long for the channel) is cleaned and capped, then stored and queued."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.twilio.inbound import TwilioWebhooks
from channels.twilio.media import MediaFetcher
from channels.web.handlers import WebChat
from channels.web.hub import LocalBus, WebHub
from config.languages import LANGUAGES
from supportlah.web_intro import KnowledgeIntro
from config.sql import create_engine, session_factory
from memory.store import MessageStore
from supportlah import migrate
from tests.fakes.twilio_api import twilio_signature
from tests.harness import RecordingQueue
from tests.services import fresh_postgres
from workers.ingress import PipelineIngress

AUTH_TOKEN = "edge-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "7" * 32
PUBLIC_URL = "https://support.example.com"
WHATSAPP_PATH = "/webhooks/twilio/whatsapp"
VISITOR = "visitor-edge-01"


@pytest.fixture
async def store():
    async with fresh_postgres() as url:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            yield MessageStore(session_factory(engine))
        finally:
            await engine.dispose()


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
async def client(store, queue, tmp_path: Path):
    media = MediaFetcher(ACCOUNT_SID, AUTH_TOKEN, tmp_path / "media", 1024)
    ingress = PipelineIngress(store, queue)
    app = web.Application()
    app.add_routes(TwilioWebhooks(ingress, AUTH_TOKEN, PUBLIC_URL, media, store).routes())
    async def no_headings() -> list:
        return []

    chat = WebChat(ingress, store, WebHub(LocalBus()), business_name="Test", max_message_chars=4000,
                   allowed_origins=[], reply_timeout=0.05, languages=LANGUAGES,
                   intro=KnowledgeIntro(no_headings, business_name="Test", language="en", greeting=None,
                                        configured=[]))
    app.add_routes(chat.routes())
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await media.close()


def form(**extra: str) -> dict[str, str]:
    values = {"MessageSid": "SM" + "d" * 32, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+6591234567",
              "To": "whatsapp:+6560001111", "Body": "hello", "NumMedia": "0"}
    values.update(extra)
    return values


async def post_form(client: TestClient, values: dict[str, str]):
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + WHATSAPP_PATH, values)
    return await client.post(WHATSAPP_PATH, data=values, headers={"X-Twilio-Signature": signature})


async def test_a_signed_body_with_nul_bytes_is_stored_without_them(client, store, queue):
    response = await post_form(client, form(Body="hel\x00lo\x1b there", ProfileName="Mei\x00 Ling"))
    assert response.status == 200
    [message_id] = queue.enqueued
    stored = await store.load(message_id)
    assert stored.message.text == "hello there"
    assert stored.message.sender_name == "Mei Ling"


async def test_a_body_longer_than_twilio_allows_is_capped_at_1600(client, store, queue):
    response = await post_form(client, form(Body="x" * 100_000))
    assert response.status == 200
    [message_id] = queue.enqueued
    assert len((await store.load(message_id)).message.text) == 1600


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"MessageSid=SM1&From=whatsapp%3A%2B65&Body=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"MessageSid=SM1&From=x&Body=hi", "application/x-www-form-urlencoded; charset=no-such-charset"),
    ],
)
async def test_an_unreadable_form_is_400_not_500(client, store, queue, body, content_type):
    response = await client.post(WHATSAPP_PATH, data=body, headers={"Content-Type": content_type,
                                                                   "X-Twilio-Signature": "x"})
    assert response.status == 400
    assert "unreadable form" in await response.text()
    assert queue.enqueued == [] and (await store.counts())["inbound"] == 0


async def test_a_sender_id_too_long_for_the_store_is_400(client, store, queue):
    response = await post_form(client, form(From="whatsapp:+" + "6" * 300))
    assert response.status == 400
    assert "sender id" in await response.text()
    assert (await store.counts())["inbound"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"visitor_id": "visitor-edge-01", "text": "\xff"}', "application/json", "not valid UTF-8"),
        (b'{"visitor_id": "visitor-edge-01", "text": "hi"}', "application/json; charset=no-such", None),
        (b"[" * 20_000 + b"]" * 20_000, "application/json", "nested deeper"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", "larger than"),
        (b'{"visitor_id": "visitor-edge-01", "text": 12}', "application/json", "text must be"),
        (b'{"visitor_id": "visitor-edge-01", "text": {"a": 1}}', "application/json", "text must be"),
        (b'{"visitor_id": "visitor-edge-01\\n", "text": "hi"}', "application/json", "visitor_id"),
        (b'{"visitor_id": "visitor-edge-01", "text": "\\u0000\\u0007"}', "application/json", "non-empty"),
        (b'{"visitor_id": "visitor-edge-01", "text": "' + b"x" * 4001 + b'"}', "application/json", "longer"),
        (b'{"visitor_id": "visitor-edge-01", "text": 1' + b"0" * 5000 + b"}", "application/json", "malformed"),
    ],
)
async def test_a_bad_web_chat_post_is_4xx_with_a_reason(client, store, queue, body, content_type, reason):
    response = await client.post("/api/chat", data=body, headers={"Content-Type": content_type})
    if reason is None:  # the charset label is ignored: JSON is UTF-8, and this body is fine
        assert response.status in (200, 202)
        return
    assert response.status == (413 if reason == "larger than" else 400)
    assert reason in (await response.json())["error"]
    assert (await store.counts())["inbound"] == 0


async def test_a_lone_surrogate_in_web_chat_text_is_dropped_not_a_500(client, store, queue):
    body = b'{"visitor_id": "visitor-edge-01", "text": "hi \\ud800there"}'
    response = await client.post("/api/chat", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 202  # stored and queued; nobody answers in this test
    [message_id] = queue.enqueued
    assert (await store.load(message_id)).message.text == "hi there"


async def test_bad_websocket_frames_get_an_error_event_and_the_socket_stays_usable(client, store, queue):
    async with client.ws_connect(f"/ws/chat?visitor_id={VISITOR}") as ws:
        assert (await ws.receive_json())["type"] == "history"
        for frame in ("[" * 50_000, '{"type": "message", "text": 5}', "not json", '{"type": "message"}'):
            await ws.send_str(frame)
            event = await ws.receive_json()
            assert event["type"] == "error", frame[:20]
        await ws.send_str('{"type": "message", "text": "still here"}')
        assert (await ws.receive_json())["type"] == "ack"
    assert len(queue.enqueued) == 1
