"""TwilioSender with the real twilio SDK against the local fake Messages API."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from email.utils import format_datetime

from pathlib import Path

import pytest

from channels.base import (
    OutboundSender,
    OutsideWindowError,
    PermanentChannelError,
    RecipientUnreachable,
    TransientChannelError,
)
from channels.messages import Channel, InboundMessage, OutboundMessage, utcnow
from channels.twilio.outbound import MessageTooLongError, TwilioSender
from memory.db import Base, create_engine, session_factory
from memory.store import MessageStore
from tests.fakes.twilio_api import FakeTwilioApi

# The twilio SDK itself still passes aiohttp's deprecated ``auth=``; nothing we can change.
pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "outbound-auth-token"
FROM_WHATSAPP = "whatsapp:+6560001111"
SMS_FROM = "+6560002222"
CUSTOMER = "whatsapp:+6591234567"
TEMPLATE = "HX" + "f" * 32
CALLBACK = "https://support.example.com/webhooks/twilio/status"


@pytest.fixture
async def store(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'twilio.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield MessageStore(session_factory(engine))
    await engine.dispose()


async def customer_wrote(store: MessageStore, ago: timedelta, sender: str = CUSTOMER) -> None:
    await store.record_inbound(
        InboundMessage(channel=Channel.WHATSAPP, provider_message_id=f"SM{sender}{ago}", sender_id=sender,
                       text="Hi", received_at=utcnow() - ago)
    )


@pytest.fixture
async def api():
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.errors == []


@pytest.fixture
async def window(store) -> MessageStore:
    """The store as the sender's window lookup; the customer wrote five minutes ago."""
    await customer_wrote(store, timedelta(minutes=5))
    return store


def make_sender(api: FakeTwilioApi, window: MessageStore, **overrides) -> TwilioSender:
    options = dict(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_whatsapp=FROM_WHATSAPP,
        api_base_url=api.base_url,
        status_callback_url=CALLBACK,
        template_content_sid=TEMPLATE,
        window=window,
        sms_from=SMS_FROM,
    )
    options.update(overrides)
    return TwilioSender(**options)


@pytest.fixture
async def sender(api, window):
    twilio = make_sender(api, window)
    yield twilio
    await twilio.close()


def reply(text: str, recipient: str = CUSTOMER, key: str = "conv-1:msg-1:0") -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.WHATSAPP, recipient_id=recipient, conversation_id="conv-1", text=text, idempotency_key=key
    )


async def test_sender_satisfies_the_outbound_protocol(sender):
    assert isinstance(sender, OutboundSender)
    assert sender.channel is Channel.WHATSAPP


async def test_free_form_reply_inside_window(api, sender):
    receipt = await sender.send(reply("General servicing is $45 per unit."))

    [sent] = api.messages
    assert (sent.to, sent.from_, sent.body) == (CUSTOMER, FROM_WHATSAPP, "General servicing is $45 per unit.")
    assert sent.content_sid is None
    assert sent.status_callback == CALLBACK
    assert receipt.provider_message_id == sent.sid and sent.sid.startswith("SM")
    assert receipt.status == "queued"


async def test_whatsapp_prefix_is_added_to_a_bare_sender_number(api, window):
    twilio = make_sender(api, window, from_whatsapp="+6560001111")
    try:
        await twilio.send(reply("Hello"))
    finally:
        await twilio.close()

    assert api.messages[0].from_ == FROM_WHATSAPP


@pytest.mark.parametrize("last_seen", [timedelta(hours=25), None], ids=["stale", "never"])
async def test_template_is_sent_outside_the_24h_window(api, store, last_seen):
    if last_seen is not None:
        await customer_wrote(store, last_seen)
    sender = make_sender(api, store)
    text = "Your technician is confirmed for Friday. " * 30

    try:
        receipt = await sender.send(reply(text.strip()))
    finally:
        await sender.close()

    [sent] = api.messages
    assert sent.body is None
    assert sent.content_sid == TEMPLATE
    assert json.loads(sent.content_variables) == {"1": text.strip()[:900]}
    assert (sent.to, sent.from_) == (CUSTOMER, FROM_WHATSAPP)
    assert receipt.provider_message_id == sent.sid


async def test_provider_63016_falls_back_to_template(api, sender):
    api.fail_next("63016")

    receipt = await sender.send(reply("Sure, we can come on Saturday."))

    free_form, template = api.messages
    assert (free_form.body, free_form.answered) == ("Sure, we can come on Saturday.", 400)
    assert (template.content_sid, template.answered) == (TEMPLATE, 201)
    assert json.loads(template.content_variables) == {"1": "Sure, we can come on Saturday."}
    assert receipt.provider_message_id == template.sid


async def test_closed_window_without_template_raises(api, store):
    twilio = make_sender(api, store, template_content_sid=None)
    try:
        with pytest.raises(OutsideWindowError) as caught:
            await twilio.send(reply("Hello again"))
    finally:
        await twilio.close()

    assert caught.value.code == "63016"
    assert caught.value.retryable is False
    assert api.messages == []


async def test_63016_without_template_raises_after_one_attempt(api, window):
    twilio = make_sender(api, window, template_content_sid=None)
    api.fail_next("63016")
    try:
        with pytest.raises(OutsideWindowError):
            await twilio.send(reply("Hello again"))
    finally:
        await twilio.close()

    assert len(api.messages) == 1


async def test_rate_limit_is_transient_with_retry_after_and_not_resent(api, sender):
    api.fail_next("429")

    with pytest.raises(TransientChannelError) as caught:
        await sender.send(reply("Thanks for waiting"))

    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0
    assert caught.value.code == "20429"
    assert isinstance(caught.value.__cause__, Exception)
    assert len(api.messages) == 1


async def test_retry_after_as_http_date(api, sender):
    api.fail_next("429", retry_after=format_datetime(utcnow() + timedelta(seconds=30), usegmt=True))

    with pytest.raises(TransientChannelError) as caught:
        await sender.send(reply("Thanks for waiting"))

    assert 25 <= caught.value.retry_after <= 30


async def test_retry_after_belongs_to_the_request_that_got_it(api, sender):
    api.fail_next("429")
    results = await asyncio.gather(
        sender.send(reply("first", key="k1")), sender.send(reply("second", key="k2")), return_exceptions=True
    )

    errors = [r for r in results if isinstance(r, Exception)]
    receipts = [r for r in results if not isinstance(r, Exception)]
    assert len(errors) == 1 and len(receipts) == 1
    assert errors[0].retry_after == 7.0
    assert len(api.messages) == 2


async def test_server_error_is_transient_without_retry_after(api, sender):
    api.fail_next("500")

    with pytest.raises(TransientChannelError) as caught:
        await sender.send(reply("Hello"))

    assert caught.value.retry_after is None
    assert caught.value.code == "20500"


@pytest.mark.parametrize("kind", ["21211", "21610"])
async def test_invalid_or_unsubscribed_recipient_is_permanent(api, sender, kind):
    api.fail_next(kind)

    with pytest.raises(RecipientUnreachable) as caught:
        await sender.send(reply("Hello"))

    assert caught.value.code == kind
    assert caught.value.retryable is False
    assert len(api.messages) == 1


async def test_recovers_after_a_transient_failure_on_the_next_call(api, sender):
    api.fail_next("500")
    with pytest.raises(TransientChannelError):
        await sender.send(reply("Hello"))

    receipt = await sender.send(reply("Hello"))

    assert [m.answered for m in api.messages] == [500, 201]
    assert receipt.provider_message_id == api.messages[1].sid


async def test_sms_recipient_uses_sms_number_and_ignores_window(api, store, sender):
    await customer_wrote(store, timedelta(days=30), sender="+6598765432")

    receipt = await sender.send(reply("We are open 9am to 6pm.", recipient="+6598765432"))

    [sent] = api.messages
    assert (sent.to, sent.from_, sent.body) == ("+6598765432", SMS_FROM, "We are open 9am to 6pm.")
    assert sent.content_sid is None
    assert receipt.provider_message_id == sent.sid


async def test_sms_without_configured_number_is_permanent(api, window):
    twilio = make_sender(api, window, sms_from=None)
    try:
        with pytest.raises(PermanentChannelError, match="SMS"):
            await twilio.send(reply("Hi", recipient="+6598765432"))
    finally:
        await twilio.close()

    assert api.messages == []


async def test_part_over_1600_chars_is_refused_not_truncated(api, sender):
    with pytest.raises(MessageTooLongError, match="1601"):
        await sender.send(reply("x" * 1601))

    assert api.messages == []


async def test_timeout_is_transient(api, window):
    twilio = make_sender(api, window, timeout_seconds=0.1)
    api.stall_next(0.4)
    try:
        with pytest.raises(TransientChannelError) as caught:
            await twilio.send(reply("Hello"))
    finally:
        await twilio.close()

    assert caught.value.code == "timeout"


async def test_unreachable_api_is_transient(window, unused_tcp_port):
    twilio = TwilioSender(
        ACCOUNT_SID, AUTH_TOKEN, FROM_WHATSAPP, f"http://127.0.0.1:{unused_tcp_port}", None, TEMPLATE, window
    )
    try:
        with pytest.raises(TransientChannelError) as caught:
            await twilio.send(reply("Hello"))
    finally:
        await twilio.close()

    assert caught.value.code == "network"
