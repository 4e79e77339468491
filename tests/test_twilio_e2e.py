"""End to end through the composed app: signed Twilio webhook → store → worker → agent → one Twilio send."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import Channel
from memory.models import InboundStatus, PartState
from supportlah import migrate
from supportlah.app import create_app
from supportlah.container import Container, build
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.harness import MECHANICS, drain

# The twilio SDK itself still passes aiohttp's deprecated ``auth=``; nothing we can change.
pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "e2e-auth-token"
PUBLIC_URL = "https://support.example.com"
BUSINESS_NUMBER = "whatsapp:+6560001111"
CUSTOMER = "whatsapp:+6591234567"


def inbound_form(sid: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS_NUMBER, "Body": body,
            "NumMedia": "0", "ProfileName": "Mei Ling", "WaId": "6591234567"}


async def post_signed(client: TestClient, path: str, form: dict[str, str]):
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + path, form)
    return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})


async def only_message_id(container: Container, sender: str) -> str:
    """Our id of the single message this sender's conversation holds."""
    conversation_id = await container.store.conversation_for(Channel.WHATSAPP, sender)
    [user_turn] = [turn for turn in await container.store.transcript(conversation_id) if turn["role"] == "user"]
    return user_turn["message_id"]


@pytest.fixture
async def twilio_api():
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


async def test_signed_webhook_is_answered_exactly_once_through_twilio(backend, twilio_api):
    settings = backend.settings(
        **MECHANICS,
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=BUSINESS_NUMBER,
        twilio_api_base_url=twilio_api.base_url,
    )
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=False)
    app = create_app(container)  # its cleanup closes the container
    async with TestClient(TestServer(app)) as client:
        form = inbound_form("SM" + "e" * 32, "Hello, do you service aircon in Tampines?")
        first = await post_signed(client, "/webhooks/twilio/whatsapp", form)
        redelivered = await post_signed(client, "/webhooks/twilio/whatsapp", form)  # Twilio retried
        assert first.status == redelivered.status == 200

        await drain(container)

        message_id = await only_message_id(container, CUSTOMER)
        reply = await container.store.get_reply(message_id)
        parts = await container.store.parts_for(message_id)
        assert reply is not None and reply.text
        assert (await container.store.load(message_id)).status in (InboundStatus.ANSWERED, InboundStatus.ESCALATED)

        assert len(twilio_api.messages) == len(parts) == 1
        [sent] = twilio_api.messages
        assert (sent.to, sent.from_, sent.body) == (CUSTOMER, BUSINESS_NUMBER, reply.text)
        assert sent.status_callback == PUBLIC_URL + "/webhooks/twilio/status"
        [part] = parts
        assert (part.state, part.provider_message_id) == (PartState.SENT, sent.sid)

        status = await post_signed(
            client, "/webhooks/twilio/status",
            {"MessageSid": sent.sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID, "To": CUSTOMER},
        )
        assert status.status == 204
        assert (await container.store.get_part(part.id)).state == PartState.DELIVERED

        await drain(container)
        assert len(twilio_api.messages) == 1, "nothing is sent twice after a second drain"
    assert twilio_api.errors == []


async def test_rate_limited_send_is_retried_by_the_worker_and_delivered_once(backend, twilio_api):
    settings = backend.settings(
        **MECHANICS,
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_sms_from="+6560002222",
        twilio_api_base_url=twilio_api.base_url,
    )
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    twilio_api.fail_next("429", retry_after="0")
    container = await build(settings, start_queue=False)
    app = create_app(container)
    async with TestClient(TestServer(app)) as client:
        form = {"MessageSid": "SM" + "f" * 32, "AccountSid": ACCOUNT_SID, "From": "+6598765432",
                "To": "+6560002222", "Body": "What are your opening hours?", "NumMedia": "0"}
        assert (await post_signed(client, "/webhooks/twilio/whatsapp", form)).status == 200

        await drain(container)

        assert [m.answered for m in twilio_api.messages] == [429, 201]
        throttled, delivered = twilio_api.messages
        assert throttled.body == delivered.body and delivered.to == "+6598765432"
        assert delivered.from_ == "+6560002222"
        [part] = await container.store.parts_for(await only_message_id(container, "+6598765432"))
        assert (part.state, part.provider_message_id, part.attempts) == (PartState.SENT, delivered.sid, 2)
    assert twilio_api.errors == []


async def test_part_left_in_flight_by_a_dead_worker_is_reconciled_not_resent(backend, twilio_api):
    """The crash window: Twilio accepted a part, the worker died before recording it. The next
    attempt asks Twilio what it accepted and records that instead of sending again."""
    from sqlalchemy import select

    from memory.models import OutboundPart

    settings = backend.settings(**MECHANICS, public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                                twilio_whatsapp_from=BUSINESS_NUMBER, twilio_api_base_url=twilio_api.base_url)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=False)
    try:
        app = create_app(container)
        async with TestClient(TestServer(app)) as client:
            response = await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form("SM" + "a" * 32, "hi"))
            assert response.status == 200
            await drain(container)
            assert len([m for m in twilio_api.messages if m.sid]) == 1
            message_id = await only_message_id(container, CUSTOMER)
            # Rewind to the moment of the crash: the provider has the message, we still say "sending".
            [part] = await container.store.parts_for(message_id)
            await container.store.mark_part(part.id, PartState.SENDING, provider_message_id=None)
            await container.store.finish(message_id, InboundStatus.PROCESSING)
            await container.queue.enqueue(message_id)
            await drain(container)
        assert len([m for m in twilio_api.messages if m.sid]) == 1, "reconciled, not resent"
        assert twilio_api.list_requests, "the processor asked Twilio what it had accepted"
        async with container.store._sessions() as session:
            stored = await session.scalar(select(OutboundPart).where(OutboundPart.id == part.id))
        assert stored.state == PartState.SENT and stored.provider_message_id == twilio_api.messages[0].sid
        assert (await container.store.load(message_id)).status in (InboundStatus.ANSWERED, InboundStatus.ESCALATED)
    finally:
        await container.close()
