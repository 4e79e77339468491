"""Building the Twilio channel from settings: off when unconfigured, loud when half-configured."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import Channel, InboundMessage, OutboundMessage, utcnow
from channels.twilio.channel import TwilioConfigError, twilio_channel_from_settings
from config.settings import Settings
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from workers.delivery import DeliveryTracker
from workers.ingress import PipelineIngress
from tests.harness import RecordingQueue, sqlite_store

# The twilio SDK itself still passes aiohttp's deprecated ``auth=``; nothing we can change.
pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

ACCOUNT_SID = "AC" + "4" * 32
AUTH_TOKEN = "channel-auth-token"


@pytest.fixture
async def store(tmp_path: Path):
    async with sqlite_store(tmp_path / "twilio.db") as message_store:
        yield message_store


def settings(tmp_path: Path, **values) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)


def test_channel_is_off_without_an_account(tmp_path, store):
    assert twilio_channel_from_settings(settings(tmp_path), store) is None


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"twilio_account_sid": ACCOUNT_SID}, "SUPPORTLAH_TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN, "twilio_whatsapp_from": "+65"},
         "SUPPORTLAH_PUBLIC_URL"),
        ({"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN, "public_url": "https://x.example"},
         "SUPPORTLAH_TWILIO_WHATSAPP_FROM"),
    ],
)
def test_half_configured_channel_names_the_missing_setting(tmp_path, store, values, named):
    with pytest.raises(TwilioConfigError, match=named):
        twilio_channel_from_settings(settings(tmp_path, **values), store)


async def test_configured_channel_receives_and_sends_through_one_store(tmp_path, store):
    api = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await api.start()
    channel = twilio_channel_from_settings(
        settings(
            tmp_path,
            public_url="https://support.example.com/",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_whatsapp_from="+6560001111",
            twilio_api_base_url=api.base_url,
        ),
        store,
    )
    assert channel is not None

    queue = RecordingQueue()
    app = web.Application()
    tracker = DeliveryTracker(store, queue, can_resend_as_template=channel.sender.has_template)
    app.add_routes(channel.webhooks(PipelineIngress(store, queue), tracker).routes())
    form = {"MessageSid": "SM" + "1" * 32, "From": "whatsapp:+6591234567", "To": "whatsapp:+6560001111",
            "Body": "Hello", "NumMedia": "0"}
    signature = twilio_signature(AUTH_TOKEN, "https://support.example.com/webhooks/twilio/whatsapp", form)
    try:
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/webhooks/twilio/whatsapp", data=form,
                                         headers={"X-Twilio-Signature": signature})
            assert response.status == 200
        conversation_id = await store.conversation_for(Channel.WHATSAPP, "whatsapp:+6591234567")
        receipt = await channel.sender.send(
            OutboundMessage(channel=Channel.WHATSAPP, recipient_id="whatsapp:+6591234567",
                            conversation_id=conversation_id, text="Hi! How can we help?", idempotency_key="k1")
        )
    finally:
        await channel.close()
        await api.stop()

    assert len(queue.enqueued) == 1
    [sent] = api.messages
    assert (sent.from_, sent.body) == ("whatsapp:+6560001111", "Hi! How can we help?")
    assert sent.status_callback == "https://support.example.com/webhooks/twilio/status"
    assert receipt.provider_message_id == sent.sid
    assert api.errors == []


async def test_window_follows_the_stored_inbound_time(tmp_path, store):
    api = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await api.start()
    channel = twilio_channel_from_settings(
        settings(tmp_path, public_url="https://support.example.com", twilio_account_sid=ACCOUNT_SID,
                 twilio_auth_token=AUTH_TOKEN, twilio_whatsapp_from="whatsapp:+6560001111",
                 twilio_template_content_sid="HX" + "0" * 32, twilio_api_base_url=api.base_url),
        store,
    )
    await store.record_inbound(InboundMessage(channel=Channel.WHATSAPP, provider_message_id="SMold",
                                              sender_id="whatsapp:+6591234567", text="Hi",
                                              received_at=utcnow() - timedelta(hours=23, minutes=59)))
    try:
        await channel.sender.send(OutboundMessage(channel=Channel.WHATSAPP, recipient_id="whatsapp:+6591234567",
                                                  conversation_id="c", text="Just in time", idempotency_key="k2"))
    finally:
        await channel.close()
        await api.stop()

    [sent] = api.messages
    assert (sent.body, sent.content_sid) == ("Just in time", None)
