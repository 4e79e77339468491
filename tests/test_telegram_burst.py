"""Telegram's limits hold across worker processes: 100 replies to one chat and 100 to 100 chats,
sent by two `supportlah worker` processes sharing Redis token buckets. The fake Bot API's own
clock shows at most 1 message/s to the single chat and at most 30/s overall, and no 429."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from channels.messages import Channel, InboundMessage
from supportlah import migrate
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI
from tests.harness import MECHANICS, running_container
from tests.services import fresh_postgres, fresh_redis_prefix

SINGLE_CHAT = 5000
MANY_CHATS = range(6000, 6100)


async def test_two_workers_share_telegrams_rate_limits(tmp_path: Path):
    async with FakeTelegramAPI() as api, fresh_postgres() as db_url, fresh_redis_prefix() as (redis_url, prefix):
        await migrate.upgrade(db_url)
        values = {
            "data_dir": tmp_path / "data", "database_url": db_url, "redis_url": redis_url, "redis_prefix": prefix,
            "telegram_bot_token": TEST_TOKEN, "telegram_webhook_secret": "burst-secret-1",
            "telegram_api_base_url": api.url, "rate_limit_contact_per_minute": 1000, "max_jobs": 20, **MECHANICS,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
        env.update({f"SUPPORTLAH_{k.upper()}": str(v) for k, v in values.items()})
        from config.settings import load_settings

        settings = load_settings(_env_file=None, **values)
        async with running_container(settings, start_queue=False) as container:
            for n in range(100):  # the single chat's 100 messages, and one message from each of 100 chats
                await container.ingress.accept(InboundMessage(
                    channel=Channel.TELEGRAM, provider_message_id=f"update:{1000 + n}", sender_id=str(SINGLE_CHAT),
                    text=f"question {n}"))
            for chat in MANY_CHATS:
                await container.ingress.accept(InboundMessage(
                    channel=Channel.TELEGRAM, provider_message_id=f"update:{chat}", sender_id=str(chat), text="hi?"))
        workers = [subprocess.Popen([sys.executable, "-m", "supportlah.cli", "worker"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"worker-{i}.log", "wb"))
                   for i in range(2)]
        try:
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline and len(api.calls_to("sendMessage")) < 200:
                await asyncio.sleep(0.5)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(60)
        sends = [c for c in api.calls_to("sendMessage")]
        assert api.errors == []

    to_single = [c.at for c in sends if int(c.params["chat_id"]) == SINGLE_CHAT]
    to_many = {int(c.params["chat_id"]) for c in sends if int(c.params["chat_id"]) != SINGLE_CHAT}
    gaps = [b - a for a, b in zip(to_single, to_single[1:])]
    times = sorted(c.at for c in sends)
    busiest_second = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    print(f"\nsendMessage calls: {len(sends)}; to the single chat: {len(to_single)} (smallest gap {min(gaps):.3f}s); "
          f"chats reached: {len(to_many)}; busiest 1-second window: {busiest_second} sends; "
          f"429s: {sum(1 for c in sends if c.status == 429)}")
    assert len(to_single) == 100 and to_many == set(MANY_CHATS) and len(sends) == 200
    assert all(c.status == 200 for c in sends), "no 429 caused by us"
    assert min(gaps) >= 0.95, "at most one message per second to one chat"
    assert busiest_second <= 30, "at most 30 messages per second for the bot"
