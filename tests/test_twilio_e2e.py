"""End to end through the composed app: signed Twilio webhook → store → worker → agent → one Twilio send."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import Channel, utcnow
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


TEMPLATE_SID = "HX" + "2" * 32
TEMPLATE_BODY = "We could not reach you in the chat, so here is our reply: {{1}} Reply here to continue."


async def provider_window_rig(backend, twilio_api, **overrides):
    """A served app whose status callbacks the fake Twilio posts back (signed) to the local server."""
    settings = backend.settings(**MECHANICS, public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID,
                                twilio_auth_token=AUTH_TOKEN, twilio_whatsapp_from=BUSINESS_NUMBER,
                                twilio_api_base_url=twilio_api.base_url, **overrides)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=False)
    client = TestClient(TestServer(create_app(container)))
    await client.start_server()
    twilio_api.route_callbacks(PUBLIC_URL, str(client.make_url("")))
    return container, client


async def settle(container: Container, twilio_api: FakeTwilioApi, *, patient: bool = False) -> None:
    """Let the callbacks arrive, then run what they enqueued, until nothing new happens.

    ``patient``: wait until nothing has changed for a few short rounds, for a callback posted (and
    its resend queued) while the previous drain was finishing; a busy machine needs it.
    """
    quiet, seen = 0, None
    for _ in range(40 if patient else 5):
        await drain(container)
        before = len(twilio_api.callbacks)
        await twilio_api.settle()
        if not patient:
            if len(twilio_api.callbacks) == before:
                return
            continue
        now = (len(twilio_api.callbacks), len(twilio_api.messages))
        quiet = quiet + 1 if now == seen else 0
        if quiet >= 3:
            return
        seen = now
        await asyncio.sleep(0.2)
    await drain(container)


async def test_a_reply_the_provider_says_is_outside_the_window_arrives_as_a_template(backend, twilio_api):
    """Our estimate says the window is open (the customer just wrote, but on another number: Twilio
    knows better). Twilio accepts the free-form reply and reports 63016 in the status callback;
    the part is resent once as the template, folded into a valid variable, and delivered."""
    twilio_api.add_content(TEMPLATE_SID, TEMPLATE_BODY)
    twilio_api.close_window(CUSTOMER)
    container, client = await provider_window_rig(backend, twilio_api, twilio_template_content_sid=TEMPLATE_SID)
    try:
        form = inbound_form("SM" + "b" * 32, "Hello, do you service aircon in Tampines?")
        assert (await post_signed(client, "/webhooks/twilio/whatsapp", form)).status == 200

        await settle(container, twilio_api, patient=True)

        free_form, template = twilio_api.messages
        assert (free_form.answered, free_form.status, free_form.error_code) == (201, "failed", 63016)
        assert (template.answered, template.content_sid, template.status) == (201, TEMPLATE_SID, "delivered")
        variable = json.loads(template.content_variables)["1"]
        assert "\n" not in variable and variable.rstrip("…")[:40] == " ".join(free_form.body.split())[:40]
        message_id = await only_message_id(container, CUSTOMER)
        original, resend = sorted(await container.store.parts_for(message_id), key=lambda p: p.created_at)
        assert (original.state, original.error_code) == (PartState.REPLACED, "63016")
        assert (resend.state, resend.provider_message_id) == (PartState.DELIVERED, template.sid)
        assert (await container.store.load(message_id)).status in (InboundStatus.ANSWERED, InboundStatus.ESCALATED)
        await settle(container, twilio_api)
        assert len(twilio_api.messages) == 2, "one template, nothing sent again"
    finally:
        await client.close()
    assert twilio_api.errors == []


async def test_a_callback_before_the_sid_is_recorded_still_triggers_the_template(backend, twilio_api):
    """The failure is reported before our worker has even committed the SID (the callback races
    the 201): it is kept, applied when the SID is recorded, and the template goes out."""
    twilio_api.add_content(TEMPLATE_SID, TEMPLATE_BODY)
    twilio_api.close_window(CUSTOMER)
    twilio_api.callbacks_before_response = True
    container, client = await provider_window_rig(backend, twilio_api, twilio_template_content_sid=TEMPLATE_SID)
    try:
        assert (await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form("SM" + "c" * 32, "hi"))).status == 200
        await settle(container, twilio_api)
        assert [(m.content_sid, m.status) for m in twilio_api.messages] == [(None, "failed"),
                                                                             (TEMPLATE_SID, "delivered")]
        assert twilio_api.callbacks[0][1:] == ("failed", 204), "acknowledged although the SID was not known yet"
    finally:
        await client.close()
    assert twilio_api.errors == []


async def test_a_crash_during_a_template_send_sends_one_template(backend, twilio_api):
    """Twilio accepted the template and the worker died before recording it: reconciliation must
    recognise the rendered template in Twilio's list (its body is not our text) and not pay twice."""
    from sqlalchemy import update

    from memory.models import Contact

    twilio_api.add_content(TEMPLATE_SID, TEMPLATE_BODY)
    container, client = await provider_window_rig(backend, twilio_api, twilio_template_content_sid=TEMPLATE_SID)
    try:
        form = inbound_form("SM" + "d" * 32, "Hello, do you service aircon in Tampines?")
        assert (await post_signed(client, "/webhooks/twilio/whatsapp", form)).status == 200
        async with container.store._sessions() as session:  # the customer's window closed while it waited
            await session.execute(update(Contact).where(Contact.channel_user_id == CUSTOMER)
                                  .values(last_inbound_at=utcnow() - timedelta(hours=25)))
            await session.commit()
        await settle(container, twilio_api)
        [template] = twilio_api.messages
        assert template.content_sid == TEMPLATE_SID
        message_id = await only_message_id(container, CUSTOMER)
        [part] = await container.store.parts_for(message_id)
        # Rewind to the crash: Twilio has the template, we still say "sending" with no SID.
        await container.store.mark_part(part.id, PartState.SENDING, provider_message_id=None)
        await container.store.finish(message_id, InboundStatus.PROCESSING)
        await container.queue.enqueue(message_id)
        await settle(container, twilio_api)

        assert len(twilio_api.messages) == 1, "reconciled, not sent again"
        assert twilio_api.list_requests, "the processor asked Twilio what it had accepted"
        stored = await container.store.get_part(part.id)
        assert (stored.state, stored.provider_message_id) == (PartState.SENT, template.sid)
    finally:
        await client.close()
    assert twilio_api.errors == []


async def test_a_part_whose_callback_was_lost_is_polled_and_resent(backend, twilio_api):
    """Twilio never resends a callback: the recovery pass asks for the message resource instead."""
    twilio_api.add_content(TEMPLATE_SID, TEMPLATE_BODY)
    twilio_api.close_window(CUSTOMER)
    twilio_api.lose_callbacks(1)
    container, client = await provider_window_rig(backend, twilio_api, twilio_template_content_sid=TEMPLATE_SID,
                                                  twilio_delivery_poll_after_seconds=0.01)
    try:
        assert (await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form("SM" + "e" * 32, "hi"))).status == 200
        await settle(container, twilio_api)
        [free_form] = twilio_api.messages
        assert free_form.status == "failed" and twilio_api.callbacks == []

        await asyncio.sleep(0.05)
        assert await container.poll_deliveries() == 1
        await settle(container, twilio_api)

        assert [m.content_sid for m in twilio_api.messages] == [None, TEMPLATE_SID]
        assert twilio_api.message_fetches == 1
        assert await container.poll_deliveries() == 0, "a part with a final report is not asked about again"
    finally:
        await client.close()
    assert twilio_api.errors == []
