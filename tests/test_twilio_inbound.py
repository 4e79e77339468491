"""Twilio webhooks: signature checks, normalization, duplicates and status callbacks over real HTTP."""
from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import AttachmentKind, Channel, InboundMessage, OutboundMessage
from channels.twilio.inbound import EMPTY_TWIML, TwilioWebhooks
from channels.twilio.media import MediaFetcher
from channels.twilio.outbound import delivery_problem
from memory.models import Contact, PartState
from memory.store import MessageStore
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from workers.delivery import DeliveryTracker
from workers.ingress import PipelineIngress
from tests.harness import RecordingQueue, sqlite_store

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_URL = "https://support.example.com/"
WHATSAPP_URL = "https://support.example.com/webhooks/twilio/whatsapp"
STATUS_URL = "https://support.example.com/webhooks/twilio/status"
SHARED_KEY_ID = "webhooks_sharedkey_1"
SHARED_KEY_SECRET = "shared-key-secret-for-hmac-sha256"


@pytest.fixture
async def store(tmp_path: Path):
    async with sqlite_store(tmp_path / "twilio.db") as message_store:
        yield message_store


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def tracker(store, queue) -> DeliveryTracker:
    return DeliveryTracker(store, queue, can_resend_as_template=False,
                           classifiers={Channel.WHATSAPP: delivery_problem})


async def webhook_client(store, queue, tracker, tmp_path: Path, **options):
    media = MediaFetcher(ACCOUNT_SID, AUTH_TOKEN, tmp_path / "media", 1024)
    hooks = TwilioWebhooks(PipelineIngress(store, queue), AUTH_TOKEN, PUBLIC_URL, media, tracker, **options)
    app = web.Application()
    app.add_routes(hooks.routes())
    app.on_cleanup.append(lambda _app: media.close())
    return TestClient(TestServer(app))


@pytest.fixture
async def client(store, queue, tracker, tmp_path: Path):
    async with await webhook_client(store, queue, tracker, tmp_path,
                                    shared_keys={SHARED_KEY_ID: SHARED_KEY_SECRET}) as test_client:
        yield test_client


async def accepted(store: MessageStore, queue: RecordingQueue) -> list[InboundMessage]:
    """What was committed and enqueued, in order."""
    loaded = [await store.load(message_id) for message_id in queue.enqueued]
    return [stored.message for stored in loaded if stored is not None]


def whatsapp_form(**extra: str) -> dict[str, str]:
    form = {
        "SmsMessageSid": "SM" + "a" * 32,
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": "whatsapp:+6591234567",
        "To": "whatsapp:+6560001111",
        "Body": "Hi, how much for aircon servicing?",
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Mei Ling",
        "WaId": "6591234567",
        "MessageType": "text",
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


async def post_signed(client: TestClient, path: str, url: str, form: dict[str, str]):
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, form)}
    return await client.post(path, data=form, headers=headers)


async def test_signed_text_message_is_normalized_and_accepted(client, store, queue):
    response = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, whatsapp_form())

    assert response.status == 200
    assert response.content_type == "text/xml"
    assert await response.text() == EMPTY_TWIML
    [message] = await accepted(store, queue)
    assert message.channel is Channel.WHATSAPP
    assert message.provider_message_id == "SM" + "a" * 32
    assert message.sender_id == "whatsapp:+6591234567"
    assert message.sender_name == "Mei Ling"
    assert message.text == "Hi, how much for aircon servicing?"
    assert message.attachments == []
    assert message.metadata["to"] == "whatsapp:+6560001111"
    assert message.metadata["transport"] == "whatsapp"
    assert message.metadata["wa_id"] == "6591234567"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"},
        {"X-Twilio-Signature": twilio_signature("some-other-token", WHATSAPP_URL, whatsapp_form())},
    ],
    ids=["missing", "garbage", "wrong-token"],
)
async def test_bad_or_missing_signature_is_forbidden_and_nothing_stored(client, store, queue, headers):
    response = await client.post("/webhooks/twilio/whatsapp", data=whatsapp_form(), headers=headers)

    assert response.status == 403
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


async def test_signature_is_checked_against_public_url_not_the_proxied_one(client, store, queue):
    local_url = str(client.make_url("/webhooks/twilio/whatsapp"))

    response = await post_signed(client, "/webhooks/twilio/whatsapp", local_url, whatsapp_form())

    assert response.status == 403
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


async def test_tampered_body_fails_signature(client, store, queue):
    form = whatsapp_form()
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, WHATSAPP_URL, form)}
    form["Body"] = "Refund me everything"

    response = await client.post("/webhooks/twilio/whatsapp", data=form, headers=headers)

    assert response.status == 403
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


async def test_query_string_is_part_of_the_signed_url(client, store, queue):
    form = whatsapp_form()
    signed_url = WHATSAPP_URL + "?tenant=chillpro"

    response = await post_signed(client, "/webhooks/twilio/whatsapp?tenant=chillpro", signed_url, form)

    assert response.status == 200
    assert len(await accepted(store, queue)) == 1
    assert (await store.counts())["inbound"] == 1


@pytest.mark.parametrize(
    ("drop", "reason"),
    [("MessageSid", "missing MessageSid"), ("From", "missing From")],
)
async def test_malformed_payload_is_rejected_with_reason(client, store, queue, drop, reason):
    form = whatsapp_form()
    del form[drop]
    if drop == "MessageSid":
        del form["SmsMessageSid"]

    response = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    assert response.status == 400
    assert reason in await response.text()
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


async def test_media_count_without_url_is_malformed(client, store, queue):
    form = whatsapp_form(NumMedia="2", MediaUrl0="https://api.twilio.com/x", MediaContentType0="image/jpeg")

    response = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    assert response.status == 400
    assert "MediaUrl1" in await response.text()
    assert queue.enqueued == []
    assert (await store.counts())["inbound"] == 0


async def test_duplicate_delivery_is_acknowledged_but_not_queued_twice(client, store, queue):
    first = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, whatsapp_form())
    second = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, whatsapp_form())

    assert first.status == second.status == 200
    assert await second.text() == EMPTY_TWIML
    assert len(await accepted(store, queue)) == 1
    assert (await store.counts())["inbound"] == 1


async def test_sms_sender_keeps_plain_number_and_is_marked_sms(client, store, queue):
    form = {
        "MessageSid": "SM" + "b" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": "+6598765432",
        "To": "+6560002222",
        "Body": "Are you open on Sunday?",
        "NumMedia": "0",
    }

    response = await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    assert response.status == 200
    [message] = await accepted(store, queue)
    assert message.sender_id == "+6598765432"
    assert message.sender_name is None
    assert message.metadata == {"to": "+6560002222", "transport": "sms"}


async def test_button_reply_uses_payload_when_body_is_empty(client, store, queue):
    form = whatsapp_form(Body="", ButtonPayload="BOOK_SERVICING", ButtonText="Book now", MessageType="button")

    await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    [message] = await accepted(store, queue)
    assert message.text == "BOOK_SERVICING"
    assert message.metadata["button_payload"] == "BOOK_SERVICING"
    assert message.metadata["button_text"] == "Book now"


async def test_location_becomes_a_location_attachment(client, store, queue):
    form = whatsapp_form(
        Body="",
        MessageType="location",
        Latitude="1.3521",
        Longitude="103.8198",
        Address="1 Orchard Road, Singapore",
        Label="Home",
    )

    await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    [message] = await accepted(store, queue)
    [location] = message.attachments
    assert location.kind is AttachmentKind.LOCATION
    assert location.url == "geo:1.3521,103.8198"
    assert location.name == "Home"
    assert message.metadata["address"] == "1 Orchard Road, Singapore"
    assert message.metadata["latitude"] == "1.3521"


async def test_media_items_are_listed_not_downloaded(client, store, queue):
    form = whatsapp_form(
        Body="Photo of the leak",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        MediaContentType1="audio/ogg",
    )

    await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, form)

    [message] = await accepted(store, queue)
    assert [(a.kind, a.mime_type, a.url[-3:]) for a in message.attachments] == [
        (AttachmentKind.IMAGE, "image/jpeg", "ME1"),
        (AttachmentKind.AUDIO, "audio/ogg", "ME2"),
    ]


async def sent_part(store: MessageStore, client: TestClient, provider_sid: str) -> str:
    """A reply part the store knows Twilio accepted as ``provider_sid`` (after a customer message)."""
    await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, whatsapp_form())
    conversation_id = await store.conversation_for(Channel.WHATSAPP, "whatsapp:+6591234567")
    part = OutboundMessage(channel=Channel.WHATSAPP, recipient_id="whatsapp:+6591234567",
                           conversation_id=conversation_id, text="Servicing is $45.", idempotency_key="k-status")
    assert await store.add_outbound(part, role="assistant")
    await store.mark_part(part.id, PartState.SENT, provider_message_id=provider_sid)
    return part.id


async def test_status_callback_is_recorded(client, store):
    part_id = await sent_part(store, client, "SM" + "c" * 32)
    form = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "undelivered", "ErrorCode": "63024",
            "AccountSid": ACCOUNT_SID, "To": "whatsapp:+6591234567"}

    response = await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)

    assert response.status == 204
    part = await store.get_part(part_id)
    assert (part.state, part.error_code) == (PartState.FAILED, "63024")


async def test_status_callback_without_error_code_advances_state(client, store):
    part_id = await sent_part(store, client, "SM" + "d" * 32)
    form = {"MessageSid": "SM" + "d" * 32, "MessageStatus": "read", "AccountSid": ACCOUNT_SID}

    response = await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)

    assert response.status == 204
    part = await store.get_part(part_id)
    assert (part.state, part.error_code) == (PartState.READ, None)


async def test_status_for_an_unknown_message_is_acknowledged(client):
    form = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}

    response = await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)

    assert response.status == 204


async def test_status_callback_requires_signature_and_fields(client, store):
    part_id = await sent_part(store, client, "SM" + "e" * 32)
    form = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered"}
    unsigned = await client.post("/webhooks/twilio/status", data=form)
    incomplete = await post_signed(client, "/webhooks/twilio/status", STATUS_URL, {"MessageSid": "SM" + "e" * 32})

    assert unsigned.status == 403
    assert incomplete.status == 400
    assert (await store.get_part(part_id)).state == PartState.SENT


async def test_status_for_a_sid_not_recorded_yet_is_kept_and_applied_when_it_is(client, store, tracker):
    """Twilio can report a fast failure before the worker committed the SID; it never resends."""
    early_sid = "SM" + "7" * 32
    form = {"MessageSid": early_sid, "MessageStatus": "undelivered", "ErrorCode": "30008",
            "AccountSid": ACCOUNT_SID}
    assert (await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)).status == 204

    part_id = await sent_part(store, client, early_sid)  # the worker records the SID only now
    assert (await store.get_part(part_id)).state == PartState.SENT
    await tracker.recorded(Channel.WHATSAPP, early_sid)

    part = await store.get_part(part_id)
    assert (part.state, part.error_code) == (PartState.FAILED, "30008")
    assert await store.take_early_statuses(Channel.WHATSAPP, early_sid) == [], "applied once, then gone"


async def test_an_undeliverable_recipient_reported_later_is_marked_unreachable(client, store):
    await sent_part(store, client, "SM" + "6" * 32)
    form = {"MessageSid": "SM" + "6" * 32, "MessageStatus": "undelivered", "ErrorCode": "63003",
            "AccountSid": ACCOUNT_SID}

    assert (await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)).status == 204

    async with store._sessions() as session:
        contact = await session.get(Contact, (await store.load((await accepted_ids(store))[0])).contact_id)
    assert contact.unreachable is True


async def accepted_ids(store: MessageStore) -> list[str]:
    conversation_id = await store.conversation_for(Channel.WHATSAPP, "whatsapp:+6591234567")
    return [t["message_id"] for t in await store.transcript(conversation_id) if t["role"] == "user"]


async def test_hmac_sha256_signature_with_a_shared_key_is_accepted(client, store, queue):
    """X-Twilio-Webhooks-Signature-Settings names the SharedKey and the algorithm (the SDK's variant)."""
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    fake.sign_with_shared_key(SHARED_KEY_ID, SHARED_KEY_SECRET)
    form = whatsapp_form()
    headers = fake.callback_headers(WHATSAPP_URL, form)
    assert headers["X-Twilio-Webhooks-Signature-Settings"].endswith("algorithm=HMAC_SHA256")

    response = await client.post("/webhooks/twilio/whatsapp", data=form, headers=headers)

    assert response.status == 200
    assert len(await accepted(store, queue)) == 1


async def test_sha256_signature_with_an_unknown_key_or_the_wrong_secret_is_forbidden(client, store, queue):
    form = whatsapp_form()
    for key_id, secret in ((SHARED_KEY_ID, "not-the-secret"), ("webhooks_sharedkey_other", SHARED_KEY_SECRET)):
        fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
        fake.sign_with_shared_key(key_id, secret)
        response = await client.post("/webhooks/twilio/whatsapp", data=form,
                                     headers=fake.callback_headers(WHATSAPP_URL, form))
        assert response.status == 403
    assert await accepted(store, queue) == []


async def test_status_callback_is_verified_against_the_configured_callback_url(store, queue, tracker, tmp_path):
    """SUPPORTLAH_TWILIO_STATUS_CALLBACK_URL on another host and prefix: Twilio signs over that URL."""
    callback_url = "https://hooks.example.net/prefix/twilio-status"
    async with await webhook_client(store, queue, tracker, tmp_path, status_callback_url=callback_url) as client:
        part_id = await sent_part(store, client, "SM" + "5" * 32)
        form = {"MessageSid": "SM" + "5" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
        over_public = await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)
        over_callback = await post_signed(client, "/webhooks/twilio/status", callback_url, form)

    assert over_public.status == 403
    assert over_callback.status == 204
    assert (await store.get_part(part_id)).state == PartState.DELIVERED


class DeferRecordingQueue(RecordingQueue):
    """The queue seam, remembering the delay each enqueue asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.defers: list[float] = []

    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None:
        await super().enqueue(message_id, defer=defer)
        self.defers.append(defer)


async def test_a_rate_limited_delivery_is_resent_later_a_bounded_number_of_times(store, tmp_path):
    """63018 (rate limit for the channel) comes in the callback: the part is resent after a backoff,
    as a new part, at most ``max_resends`` times; a repeated callback changes nothing."""
    queue = DeferRecordingQueue()
    tracker = DeliveryTracker(store, queue, can_resend_as_template=False, max_resends=2, base_backoff=30.0,
                              classifiers={Channel.WHATSAPP: delivery_problem})
    async with await webhook_client(store, queue, tracker, tmp_path) as client:
        await post_signed(client, "/webhooks/twilio/whatsapp", WHATSAPP_URL, whatsapp_form())
        [message_id] = queue.enqueued
        conversation_id = await store.conversation_for(Channel.WHATSAPP, "whatsapp:+6591234567")
        part = OutboundMessage(channel=Channel.WHATSAPP, recipient_id="whatsapp:+6591234567", in_reply_to=message_id,
                               conversation_id=conversation_id, text="Servicing is $45.", idempotency_key="k-rl")
        assert await store.add_outbound(part, role="assistant")
        sids = iter(f"SM{n:032x}" for n in range(100, 110))
        current = part.id
        for _ in range(3):
            sid = next(sids)
            await store.mark_part(current, PartState.SENT, provider_message_id=sid)
            form = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "63018", "AccountSid": ACCOUNT_SID}
            assert (await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)).status == 204
            assert (await post_signed(client, "/webhooks/twilio/status", STATUS_URL, form)).status == 204  # again
            pending = [p for p in await store.parts_for(message_id) if p.state == PartState.PENDING]
            current = pending[0].id if pending else None

    parts = await store.parts_for(message_id)
    assert sorted(p.idempotency_key for p in parts) == ["k-rl", "k-rl:retry1", "k-rl:retry1:retry2"]
    assert [p.state for p in sorted(parts, key=lambda p: p.idempotency_key)] == [
        PartState.REPLACED, PartState.REPLACED, PartState.FAILED]
    assert queue.defers == [30.0, 60.0], "backoff doubles; the third failure is final"
    assert current is None
