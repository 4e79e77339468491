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
from channels.base import SEND_AS, TEMPLATE as SEND_AS_TEMPLATE, DeliveryProblem, ProviderRecord
from channels.messages import Channel, InboundMessage, OutboundMessage, utcnow
from channels.twilio.outbound import MessageTooLongError, TwilioSender, delivery_problem, template_variable
from config.sql import Base, create_engine, session_factory
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
TEMPLATE_BODY = "Hello from Supportlah. Our reply: {{1}} Reply to this message to continue the chat."


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
    fake.add_content(TEMPLATE, TEMPLATE_BODY)
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


def reply(text: str, recipient: str = CUSTOMER, key: str = "conv-1:msg-1:0", **meta: str) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.WHATSAPP, recipient_id=recipient, conversation_id="conv-1", text=text, idempotency_key=key,
        metadata=meta,
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
    assert sent.content_sid == TEMPLATE and sent.answered == 201
    variable = json.loads(sent.content_variables)["1"]
    assert variable.startswith("Your technician is confirmed for Friday.") and variable.endswith("…")
    assert len(sent.body) <= 1024, "the rendered template fits WhatsApp's 1,024 characters"
    assert (sent.to, sent.from_) == (CUSTOMER, FROM_WHATSAPP)
    assert receipt.provider_message_id == sent.sid
    assert api.content_fetches == 1


async def test_a_multi_line_reply_outside_the_window_is_folded_into_a_valid_variable(api, store):
    """Twilio refuses a variable with a newline, a tab or > 4 spaces (21656); agent replies are multi-line."""
    sender = make_sender(api, store)
    text = "Our prices:\n\n- General servicing: $45\n- Chemical wash:\t$80\n\nBook any      weekday."

    try:
        await sender.send(reply(text))
        await sender.send(reply(text, key="conv-1:msg-1:1"))
    finally:
        await sender.close()

    assert [m.answered for m in api.messages] == [201, 201]
    assert json.loads(api.messages[0].content_variables) == {
        "1": "Our prices: - General servicing: $45 - Chemical wash: $80 Book any weekday."}
    assert api.content_fetches == 1, "the template is fetched once"


async def test_the_fake_refuses_an_unfolded_variable_like_twilio(api):
    """The fake's 21656 is what the fold above guards against (a request error, on the create call)."""
    from twilio.rest import Client

    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = api.base_url
    with pytest.raises(Exception) as caught:
        await asyncio.to_thread(client.messages.create, to=CUSTOMER, from_=FROM_WHATSAPP, content_sid=TEMPLATE,
                                content_variables=json.dumps({"1": "line one\nline two"}))
    assert getattr(caught.value, "code", None) == 21656
    assert api.messages[-1].answered == 400


def test_template_variable_folds_and_cuts_on_a_word():
    assert template_variable("a\r\nb\tc     d    e", 100) == "a b c d    e"
    cut = template_variable("word " * 100, 42)
    assert len(cut) <= 42 and cut.endswith("word…")


async def test_63016_is_not_an_error_on_the_send_it_comes_later(api, sender):
    """Outside the window Twilio accepts the free-form message (201 queued) and reports 63016 later."""
    api.close_window(CUSTOMER)  # our estimate says open (the customer wrote 5 minutes ago elsewhere)

    receipt = await sender.send(reply("Sure, we can come on Saturday."))

    [sent] = api.messages
    assert (sent.body, sent.answered, receipt.status) == ("Sure, we can come on Saturday.", 201, "queued")
    await api.settle()
    assert (sent.status, sent.error_code) == ("failed", 63016)
    report = await sender.delivery_report(sent.sid)
    assert (report.status, report.error_code, report.problem) == ("failed", "63016", DeliveryProblem.OUTSIDE_WINDOW)


async def test_a_part_marked_send_as_template_goes_out_as_the_template(api, sender):
    receipt = await sender.send(reply("Sure, we can come on Saturday.", **{SEND_AS: SEND_AS_TEMPLATE}))

    [sent] = api.messages
    assert (sent.content_sid, sent.answered) == (TEMPLATE, 201)
    assert json.loads(sent.content_variables) == {"1": "Sure, we can come on Saturday."}
    assert receipt.provider_message_id == sent.sid


async def test_a_template_send_is_recognised_in_the_provider_list(api, store):
    """Reconciliation: Twilio's body for a ContentSid send is the rendered template, not our text."""
    sender = make_sender(api, store)
    part = reply("Line one.\nLine two, which is longer.")
    try:
        await sender.send(part)
        [record] = await sender.recent_sends(CUSTOMER, utcnow() - timedelta(minutes=1))
        other = ProviderRecord(provider_message_id="SM" + "0" * 32, body="Something else", created_at=utcnow())
        assert record.body != part.text
        assert await sender.is_same_message(part, record) is True
        assert await sender.is_same_message(part, other) is False
    finally:
        await sender.close()


@pytest.mark.parametrize(("code", "problem"), [
    ("63016", DeliveryProblem.OUTSIDE_WINDOW), ("63003", DeliveryProblem.UNREACHABLE),
    ("63024", DeliveryProblem.UNREACHABLE), ("63018", DeliveryProblem.RATE_LIMITED),
    ("30008", DeliveryProblem.OTHER), (None, DeliveryProblem.OTHER)])
def test_delivery_error_codes_are_read_as_twilio_documents_them(code, problem):
    assert delivery_problem(code) is problem


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
