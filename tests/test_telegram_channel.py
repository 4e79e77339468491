"""The Telegram channel as the composition root builds it from settings, against the fake Bot API."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from channels.messages import Channel, OutboundMessage
from channels.telegram.channel import TelegramConfigError, telegram_channel_from_settings
from config.settings import Settings
from config.sql import Base, create_engine, session_factory
from memory.store import MessageStore
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from tests.services import fresh_redis_prefix
from workers.ingress import PipelineIngress
from tests.harness import RecordingQueue

SECRET = "webhook-secret-123"


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as api:
        yield api
        assert api.errors == []


def settings_for(tmp_path: Path, api_url: str, **overrides) -> Settings:
    values = dict(data_dir=tmp_path, telegram_bot_token=TEST_TOKEN, telegram_api_base_url=api_url,
                  telegram_webhook_secret=SECRET, staff_chat_id=-100123, telegram_poll_timeout_seconds=1,
                  telegram_private_chat_per_second=1000.0, telegram_overall_per_second=1000.0)
    values.update(overrides)
    return Settings(_env_file=None, **values)


def test_channel_is_off_without_a_token(tmp_path):
    assert telegram_channel_from_settings(Settings(_env_file=None, data_dir=tmp_path), None) is None


def test_webhook_mode_requires_a_secret(tmp_path):
    with pytest.raises(TelegramConfigError, match="WEBHOOK_SECRET"):
        telegram_channel_from_settings(settings_for(tmp_path, "http://127.0.0.1:9", telegram_webhook_secret=None),
                                       None)


async def test_polling_mode_end_to_end(fake, tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    store, queue = MessageStore(session_factory(engine)), RecordingQueue()
    channel = telegram_channel_from_settings(
        settings_for(tmp_path, fake.url, telegram_mode="polling", telegram_webhook_secret=None), None)
    await channel.start()
    assert channel.bot.username == "supportlah_test_bot"
    fake.queue_updates(UpdateFactory().text(424242, "hello from polling"))
    poller = channel.poller(PipelineIngress(store, queue))
    task = asyncio.create_task(poller.run())
    deadline = time.monotonic() + 5
    while not queue.enqueued and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    poller.stop()
    await asyncio.wait_for(task, 3)
    stored = await store.load(queue.enqueued[0])
    assert stored.message.text == "hello from polling"
    assert (tmp_path / "telegram_offset").read_text().strip().isdigit()
    await channel.sender.send(OutboundMessage(channel=Channel.TELEGRAM, recipient_id="424242",
                                              conversation_id=stored.message.conversation_id,
                                              text="Hi! How can I help?", in_reply_to=stored.message.id,
                                              idempotency_key="k1"))
    assert [m.text for m in fake.sent] == ["Hi! How can I help?"]
    await channel.close()
    await engine.dispose()


async def test_register_webhook_sets_url_and_commands(fake, tmp_path):
    channel = telegram_channel_from_settings(settings_for(tmp_path, fake.url), None)
    url = await channel.register_webhook("https://help.example.sg/")
    assert url == "https://help.example.sg/webhooks/telegram"
    assert fake.webhook["url"] == url and fake.webhook["secret_token"] == SECRET
    assert set(fake.commands) == {None, "zh", "ms", "ta"}
    await channel.close()


async def test_a_refused_token_fails_startup_without_echoing_it(fake, tmp_path):
    fake.fail_next("getMe", status=401, description="Unauthorized")
    channel = telegram_channel_from_settings(settings_for(tmp_path, fake.url), None)
    with pytest.raises(TelegramConfigError) as info:
        await channel.start()
    assert TEST_TOKEN not in str(info.value) and TEST_TOKEN not in str(info.value.__cause__)
    await channel.close()


async def test_unreachable_telegram_does_not_block_startup(tmp_path, caplog):
    channel = telegram_channel_from_settings(settings_for(tmp_path, "http://127.0.0.1:1"), None)
    await channel.start()
    assert "Telegram unreachable at startup" in caplog.text
    await channel.close()


async def test_with_redis_the_send_limits_live_in_redis(fake, tmp_path):
    async with fresh_redis_prefix() as (url, prefix):
        redis = Redis.from_url(url)
        channel = telegram_channel_from_settings(settings_for(tmp_path, fake.url, redis_prefix=prefix), redis)
        await channel.sender.send(OutboundMessage(channel=Channel.TELEGRAM, recipient_id="55", conversation_id="c",
                                                  text="hi", idempotency_key="k"))
        assert await redis.exists(f"{prefix}:tg:rate:chat:55", f"{prefix}:tg:rate:global") == 2
        await channel.close()
        await redis.aclose()
