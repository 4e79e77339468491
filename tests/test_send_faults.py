"""Sends that fail in the ways real providers fail: an answer lost after the provider accepted
the message, and a throttled send of a message another job drained. Real SDK, fake Twilio."""
from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from memory.models import InboundStatus, PartState
from supportlah import migrate
from supportlah.app import create_app
from supportlah.container import build
from tests.harness import MECHANICS, drain
from tests.test_twilio_e2e import (  # noqa: F401 — twilio_api is a fixture
    ACCOUNT_SID,
    AUTH_TOKEN,
    BUSINESS_NUMBER,
    CUSTOMER,
    PUBLIC_URL,
    inbound_form,
    only_message_id,
    post_signed,
    twilio_api,
)

pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")


def _settings(backend, twilio_api, **overrides):  # noqa: ANN001, ANN202
    return backend.settings(**MECHANICS, public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID,
                            twilio_auth_token=AUTH_TOKEN, twilio_whatsapp_from=BUSINESS_NUMBER,
                            twilio_api_base_url=twilio_api.base_url, **overrides)


async def test_a_lost_provider_response_is_reconciled_not_resent(backend, twilio_api):
    """Twilio accepted the message and the connection dropped before its 201: the part stays
    ``sending``, and the retry finds the message in Twilio's list instead of sending it again."""
    settings = _settings(backend, twilio_api)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    twilio_api.lose_response_next()
    container = await build(settings, start_queue=False)
    async with TestClient(TestServer(create_app(container))) as client:
        response = await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form("SM" + "b" * 32, "hello"))
        assert response.status == 200
        await drain(container)
        accepted = [m for m in twilio_api.messages if m.sid]
        assert twilio_api.lost_responses == 1
        assert len(accepted) == 1, "the reply reached the customer once"
        assert twilio_api.list_requests, "the worker asked Twilio before deciding whether to resend"
        message_id = await only_message_id(container, CUSTOMER)
        [part] = await container.store.parts_for(message_id)
        assert (part.state, part.provider_message_id) == (PartState.SENT, accepted[0].sid)
        assert (await container.store.load(message_id)).status in (InboundStatus.ANSWERED, InboundStatus.ESCALATED)
    assert twilio_api.errors == []


async def test_a_send_that_got_no_answer_and_was_not_accepted_is_sent_once(backend, twilio_api):
    """The other side of the same doubt: the request timed out before Twilio took it, the list
    shows nothing, and the part is sent (once)."""
    settings = _settings(backend, twilio_api, twilio_send_timeout_seconds=0.3)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    twilio_api.stall_next(1.0)  # held past our timeout; the fake then records it but nobody reads the 201
    container = await build(settings, start_queue=False)
    async with TestClient(TestServer(create_app(container))) as client:
        response = await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form("SM" + "c" * 32, "hello"))
        assert response.status == 200
        await drain(container)
        message_id = await only_message_id(container, CUSTOMER)
        [part] = await container.store.parts_for(message_id)
        assert part.state == PartState.SENT
        assert twilio_api.list_requests, "reconciled before the resend"
        # The stalled create was accepted late (after our timeout): it is the one we recorded, or
        # we resent because it was not listed yet. Either way the recorded sid is a real message.
        assert part.provider_message_id in {m.sid for m in twilio_api.messages if m.sid}
    assert twilio_api.errors == []


async def test_a_throttled_send_of_a_message_another_job_drained_retries_on_its_own(backend, twilio_api):
    """Two messages of one conversation: the first job drains both and the second send gets a
    429 with Retry-After: 1. The retry comes after that second, not at the next recovery pass."""
    settings = _settings(backend, twilio_api, conversation_lock_seconds=2.0, recovery_after_seconds=600)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=False)
    async with TestClient(TestServer(create_app(container))) as client:
        for n, text in enumerate(["hello", "what are your opening hours?"]):
            response = await post_signed(client, "/webhooks/twilio/whatsapp", inbound_form(f"SM{n:032x}", text))
            assert response.status == 200
        twilio_api.fail_nth(2, "429", retry_after="1")  # the first reply goes out, the second is throttled
        started = time.monotonic()
        await drain(container, timeout=60)
        elapsed = time.monotonic() - started
        accepted = [m for m in twilio_api.messages if m.sid]
        assert [m.answered for m in twilio_api.messages].count(429) == 1
        assert len(accepted) == 2, "both answered, each once"
        assert elapsed < 30, f"the retry waited {elapsed:.1f}s: it was left to the recovery pass"
    assert twilio_api.errors == []


async def test_a_telegram_send_without_an_answer_is_not_resent_and_is_marked_fate_unknown(backend):
    """Telegram cannot be asked what it delivered. A send whose connection closed without an
    answer has almost always arrived, so it is not sent again (no duplicate): the part is
    ``failed`` with ``fate_unknown`` and the message ``failed``, which is what staff see."""
    from channels.messages import Channel, InboundMessage
    from memory.models import OutboundPart
    from sqlalchemy import select
    from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI

    fake = FakeTelegramAPI()
    await fake.start()
    try:
        settings = backend.settings(**MECHANICS, telegram_bot_token=TEST_TOKEN, telegram_api_base_url=fake.url,
                                    telegram_webhook_secret="s3cret", telegram_private_chat_per_second=1000.0,
                                    telegram_overall_per_second=1000.0)
        if settings.database_url:
            await migrate.upgrade(settings.sqlalchemy_url)
        container = await build(settings, start_queue=False)
        try:
            fake.drop_next("sendMessage")
            message = InboundMessage(channel=Channel.TELEGRAM, provider_message_id="update:1", sender_id="4242",
                                     text="hello there", metadata={"user_id": "4242"})
            accepted = await container.ingress.accept(message)
            await drain(container)
            async with container.store._sessions() as session:  # noqa: SLF001
                [part] = list(await session.scalars(
                    select(OutboundPart).where(OutboundPart.inbound_message_id == accepted.message_id)))
            assert (part.state, part.error_code) == (PartState.FAILED, "fate_unknown")
            assert (await container.store.load(accepted.message_id)).status == InboundStatus.FAILED
            assert fake.sent == [], "the dropped send was not tried again"
        finally:
            await container.close()
    finally:
        await fake.close()
