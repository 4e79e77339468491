"""The Telegram webhook over real HTTP into the real message store, and setWebhook against the fake API."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import PermanentChannelError
from channels.messages import AttachmentKind, InboundMessage
from channels.telegram.client import build_bot
from channels.telegram.webhook import ALLOWED_UPDATES, SECRET_HEADER, WEBHOOK_PATH, TelegramWebhook, set_webhook
from memory.store import MessageStore
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from workers.ingress import PipelineIngress
from tests.harness import RecordingQueue, sqlite_store

SECRET = "s3cr3t-Webhook_token"
STAFF = -1002000000001
CUSTOMER = 81234567


@pytest.fixture
async def store(tmp_path: Path):
    async with sqlite_store(tmp_path / "telegram.db") as message_store:
        yield message_store


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as api:
        yield api
        assert api.errors == []


@pytest.fixture
async def bot(fake):
    async with build_bot(TEST_TOKEN, api_base_url=fake.url) as client:
        yield client


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
async def client(store, queue, bot):
    hook = TelegramWebhook(PipelineIngress(store, queue), bot, SECRET, STAFF)
    app = web.Application()
    app.add_routes(hook.routes())
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def updates() -> UpdateFactory:
    return UpdateFactory()


async def post(client: TestClient, payload: dict | str | bytes, secret: str | None = SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return await client.post(WEBHOOK_PATH, data=body, headers=headers)


async def accepted(store: MessageStore, queue: RecordingQueue) -> list[InboundMessage]:
    loaded = [await store.load(message_id) for message_id in queue.enqueued]
    return [stored.message for stored in loaded if stored is not None]


async def test_text_update_is_stored_and_enqueued(client, store, queue, updates):
    payload = updates.text(CUSTOMER, "Can you come on Saturday?")
    response = await post(client, payload)
    assert response.status == 200
    assert await response.json() == {"ok": True, "duplicate": False}
    [msg] = await accepted(store, queue)
    assert msg.provider_message_id == f"update:{payload['update_id']}"
    assert msg.sender_id == str(CUSTOMER)
    assert msg.text == "Can you come on Saturday?"
    assert msg.conversation_id is not None


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_wrong_or_missing_secret_is_403_and_nothing_is_stored(client, store, queue, updates, secret):
    response = await post(client, updates.text(CUSTOMER, "hello"), secret=secret)
    assert response.status == 403
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


_MESSAGE = '"message_id": 7, "date": 1700000000, "chat": {"id": 42, "type": "private"}'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "malformed JSON"),
        (b"\xff\xfe\x00", "not valid UTF-8"),
        ("[1, 2]", "must be a JSON object"),
        ('{"message": {"text": "hi"}}', "update.update_id must be an integer"),
        ('{"update_id": true, "message": {"text": "hi"}}', "update.update_id must be an integer"),
        ('{"update_id": 5, "message": "hello"}', "message must be an object"),
        ('{"update_id": 5, "message": {"text": "no chat, no date"}}', "must be an integer"),
        ('{"update_id": 5, "message": {"message_id": 7, "date": 1700000000, "text": "x"}}', "chat is missing"),
        ('{"update_id": 5, "message": {%s, "text": 12345}}' % _MESSAGE, "text must be a string"),
        ('{"update_id": 5, "message": {%s, "caption": {"a": 1}}}' % _MESSAGE, "caption must be a string"),
        ('{"update_id": 5, "message": {"message_id": 7, "date": 1, "chat": {"id": "not-a-number", '
         '"type": "private"}, "text": "hi"}}', "chat.id must be an integer"),
        ("[" * 50_000 + "]" * 50_000, "nested deeper"),
    ],
)
async def test_an_unusable_update_is_acknowledged_logged_and_not_stored(client, store, queue, body, reason):
    """Telegram redelivers anything that is not a 2xx, forever: an update we cannot use is
    answered 200 with the reason, and nothing is stored or queued."""
    response = await post(client, body)
    assert response.status == 200
    answer = await response.json()
    assert answer["ignored"] is True
    assert reason in answer["reason"]
    assert (await store.counts())["inbound"] == 0
    assert queue.enqueued == []


async def test_control_characters_are_dropped_and_long_text_is_capped(client, store, queue, updates):
    payload = updates.text(CUSTOMER, "what\x00 time do\x07 you open" + "!" * 10_000)
    response = await post(client, payload)
    assert response.status == 200 and (await response.json())["duplicate"] is False
    [message_id] = queue.enqueued
    stored = await store.load(message_id)
    assert stored.message.text.startswith("what time do you open!")
    assert len(stored.message.text) == 4096


async def test_redelivered_update_is_acknowledged_but_stored_once(client, store, queue, updates):
    payload = updates.text(CUSTOMER, "Is my technician on the way?")
    first = await post(client, payload)
    second = await post(client, payload)
    assert (first.status, second.status) == (200, 200)
    assert (await first.json())["duplicate"] is False
    assert (await second.json())["duplicate"] is True
    assert len(queue.enqueued) == 1
    assert (await store.counts())["inbound"] == 1


async def test_each_inbound_kind_arrives_in_the_store(client, store, queue, updates):
    original = updates.text(CUSTOMER, "what time do you open")
    payloads = [
        original,
        updates.photo(CUSTOMER, caption="my aircon"),
        updates.document(CUSTOMER, file_name="warranty.pdf"),
        updates.voice(CUSTOMER),
        updates.location(CUSTOMER, 1.29, 103.85),
        updates.contact(CUSTOMER, "+6598765432", "Siti"),
        updates.edited(CUSTOMER, original["message"]["message_id"], "what time do you close"),
        updates.callback(CUSTOMER, "lang:ms"),
        updates.text(CUSTOMER, "/human"),
    ]
    for payload in payloads:
        assert (await post(client, payload)).status == 200
    stored = await accepted(store, queue)
    assert [m.provider_message_id for m in stored] == [f"update:{p['update_id']}" for p in payloads]
    kinds = [m.attachments[0].kind if m.attachments else None for m in stored]
    assert kinds == [None, AttachmentKind.IMAGE, AttachmentKind.DOCUMENT, AttachmentKind.AUDIO,
                     AttachmentKind.LOCATION, AttachmentKind.CONTACT, None, None, None]
    assert stored[1].attachments[0].url == "tg-file:photo-large"
    assert stored[4].metadata["latitude"] == "1.29"
    assert stored[6].metadata["edited"] == "true"
    assert stored[7].metadata["command"] == "language" and stored[7].metadata["kind"] == "callback"
    assert stored[8].metadata["command"] == "human"
    assert len({m.conversation_id for m in stored}) == 1


async def test_group_updates_are_acknowledged_and_ignored_staff_group_is_stored(client, store, queue, updates):
    ignored = await post(client, updates.group_text(-100555, "spam"))
    assert ignored.status == 200
    assert (await ignored.json())["ignored"] is True
    staff = await post(client, updates.message(STAFF, text="On it", user_id=31337, thread_id=1001))
    assert staff.status == 200
    [msg] = await accepted(store, queue)
    assert msg.metadata["staff"] == "true"
    assert msg.metadata["thread_id"] == "1001"


async def test_only_post_is_routed(client):
    response = await client.get(WEBHOOK_PATH)
    assert response.status == 405


async def test_set_webhook_registers_url_secret_and_update_kinds(fake, bot):
    await set_webhook(bot, "https://support.example.com/webhooks/telegram", SECRET)
    assert fake.webhook == {
        "url": "https://support.example.com/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": list(ALLOWED_UPDATES),
        "drop_pending_updates": False,
    }


async def test_set_webhook_rejects_bad_input_before_calling_telegram(fake, bot):
    with pytest.raises(ValueError, match="https"):
        await set_webhook(bot, "http://support.example.com/webhooks/telegram", SECRET)
    with pytest.raises(ValueError, match="secret"):
        await set_webhook(bot, "https://support.example.com/webhooks/telegram", "has spaces!")
    assert fake.calls_to("setWebhook") == []


async def test_set_webhook_refusal_is_a_channel_error(fake, bot):
    fake.fail_next("setWebhook", status=400, description="Bad Request: bad webhook: Failed to resolve host")
    with pytest.raises(PermanentChannelError) as info:
        await set_webhook(bot, "https://nowhere.invalid/webhooks/telegram", SECRET)
    assert info.value.code == "bad_request"
    assert fake.webhook is None


async def test_webhook_requires_a_secret(bot, store, queue):
    with pytest.raises(ValueError, match="secret"):
        TelegramWebhook(PipelineIngress(store, queue), bot, "", None)


class UnavailableIngress:
    """An Ingress whose database is down: accept raises."""

    async def accept(self, message: InboundMessage):
        raise ConnectionError("database unavailable")


async def test_ingress_failure_is_a_5xx_so_telegram_redelivers(bot, updates):
    hook = TelegramWebhook(UnavailableIngress(), bot, SECRET, None)
    app = web.Application()
    app.add_routes(hook.routes())
    async with TestClient(TestServer(app)) as test_client:
        response = await post(test_client, updates.text(CUSTOMER, "hello"))
    assert response.status == 500


async def test_set_webhook_on_a_port_telegram_does_not_deliver_to_is_refused_first(fake, bot):
    """Telegram delivers webhooks only to ports 443, 80, 88 and 8443 (the fake refuses others like it)."""
    with pytest.raises(ValueError, match="ports 443, 80, 88 or 8443"):
        await set_webhook(bot, "https://support.example.com:8080/webhooks/telegram", SECRET)
    assert fake.calls_to("setWebhook") == []
    await set_webhook(bot, "https://support.example.com:8443/webhooks/telegram", SECRET)
    assert fake.webhook["url"].endswith(":8443/webhooks/telegram")


async def test_the_fake_refuses_a_webhook_port_like_telegram(fake, bot):
    from telegram.error import BadRequest

    with pytest.raises(BadRequest, match="ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://support.example.com:9000/webhooks/telegram")


async def test_the_migration_service_message_moves_the_staff_group(store, queue, bot, updates):
    """Telegram tells the old group (migrate_to_chat_id) and the new one (migrate_from_chat_id):
    either is followed, recorded for every process, and later updates from the new id are staff's."""
    from channels.telegram.staff_chat import StaffChat

    new_chat = -1002000000999
    staff_chat = StaffChat(STAFF, store)
    moves: list[tuple[int, int]] = []

    async def remember(old: int, new: int) -> None:
        moves.append((old, new))

    staff_chat.on_move(remember)
    hook = TelegramWebhook(PipelineIngress(store, queue), bot, SECRET, staff_chat)
    app = web.Application()
    app.add_routes(hook.routes())
    async with TestClient(TestServer(app)) as client:
        service = updates.message(STAFF, user_id=777, migrate_to_chat_id=new_chat,
                                  chat={"id": STAFF, "type": "group", "title": "Staff"})
        echo = updates.message(new_chat, user_id=777, migrate_from_chat_id=STAFF)
        assert (await (await post(client, service)).json())["ignored"] is True
        assert (await (await post(client, echo)).json())["ignored"] is True
        assert (await post(client, updates.text(new_chat, "#1 on it", user_id=777))).status == 200

    [message] = await accepted(store, queue)
    assert message.metadata["staff"] == "true"
    assert moves == [(STAFF, new_chat)], "recorded once"
    restarted = StaffChat(STAFF, store)
    await restarted.load()
    assert restarted.current == new_chat and restarted.is_staff(STAFF)
