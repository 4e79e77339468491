"""Production mode end to end, in separate processes: `supportlah serve` + `supportlah worker`
on Postgres and Redis, signed WhatsApp webhooks in, replies out through the real twilio SDK
to a fake Twilio. The worker is SIGKILLed mid-run and restarted; afterwards every distinct
message has exactly one reply and exactly one send, in per-conversation order."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from twilio.request_validator import RequestValidator

from supportlah import migrate
from tests.fakes.twilio_api import FakeTwilioApi
from tests.harness import wait_http
from tests.services import fresh_postgres, fresh_redis_prefix

ACCOUNT_SID = "AC" + "e2e0" * 8
AUTH_TOKEN = "e2e-auth-token-0123456789abcdef"
FROM = "whatsapp:+6560000000"
CONVERSATIONS = 20
DISTINCT = 160
DUPLICATES = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    # One process owns an embedded index: each gets its own data dir (production would use a Qdrant server).
    env = {**env, "SUPPORTLAH_DATA_DIR": str(Path(env["SUPPORTLAH_DATA_DIR"]) / log_path.stem)}
    return subprocess.Popen([sys.executable, "-m", "supportlah.cli", *args], env=env, stdout=log, stderr=log)


async def test_kill_worker_mid_run_loses_nothing_and_sends_nothing_twice(tmp_path: Path):
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    port = _free_port()
    public_url = f"http://127.0.0.1:{port}"
    async with fresh_postgres() as db_url, fresh_redis_prefix() as (redis_url, prefix):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
            "SUPPORTLAH_DATA_DIR": str(tmp_path / "data"),
            "SUPPORTLAH_DATABASE_URL": db_url,
            "SUPPORTLAH_REDIS_URL": redis_url,
            "SUPPORTLAH_REDIS_PREFIX": prefix,
            "SUPPORTLAH_PORT": str(port),
            "SUPPORTLAH_PUBLIC_URL": public_url,
            "SUPPORTLAH_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "SUPPORTLAH_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "SUPPORTLAH_TWILIO_WHATSAPP_FROM": FROM,
            "SUPPORTLAH_TWILIO_API_BASE_URL": fake.base_url,
            "SUPPORTLAH_MAX_JOBS": "8",
            "SUPPORTLAH_JOB_TIMEOUT_SECONDS": "5",
            "SUPPORTLAH_CONVERSATION_LOCK_SECONDS": "3",
            "SUPPORTLAH_SEND_GUARD_SECONDS": "3",
            "SUPPORTLAH_RECOVERY_AFTER_SECONDS": "5",
            "SUPPORTLAH_WORKER_HEALTH_SECONDS": "2",
            "SUPPORTLAH_LOG_LEVEL": "WARNING",
            # Count only the answers: no privacy notice, no out-of-hours note (both tested elsewhere).
            "SUPPORTLAH_PDPA_CONSENT_MODE": "off",
            "SUPPORTLAH_BUSINESS_HOURS": "daily 00:00-24:00",
            "SUPPORTLAH_RATE_LIMIT_CONTACT_PER_MINUTE": "1000",
            "SUPPORTLAH_RATE_LIMIT_IP_PER_MINUTE": "100000",
        }
        await migrate.upgrade(db_url)
        logs = tmp_path / "logs"
        logs.mkdir()
        server = _spawn(["serve"], env, logs / "serve.log")
        worker = _spawn(["worker"], env, logs / "worker-1.log")
        try:
            await wait_http(f"{public_url}/readyz")
            started = time.monotonic()
            deliveries = _deliveries()
            validator = RequestValidator(AUTH_TOKEN)
            url = f"{public_url}/webhooks/twilio/whatsapp"

            async def post(form: dict[str, str]) -> int:
                headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
                async with http.post(url, data=form, headers=headers) as response:
                    assert "<Response" in await response.text()
                    return response.status

            killed = False
            async with aiohttp.ClientSession() as http:
                for index, form in enumerate(deliveries):
                    assert await post(form) == 200
                    if not killed and len(fake.messages) >= 30:
                        worker.send_signal(signal.SIGKILL)  # mid-run: jobs in flight, sends in flight
                        worker.wait(10)
                        killed = True
                        worker = _spawn(["worker"], env, logs / "worker-2.log")
                    if index % 10 == 0:
                        await asyncio.sleep(0.05)  # webhooks arrive over time, not as one burst
                if not killed:  # the worker was slower than the webhooks: kill it now, mid-backlog
                    while len(fake.messages) < 30:
                        await asyncio.sleep(0.1)
                    worker.send_signal(signal.SIGKILL)
                    worker.wait(10)
                    killed = True
                    worker = _spawn(["worker"], env, logs / "worker-2.log")

            posted = time.monotonic() - started
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and len({m.sid for m in fake.messages if m.sid}) < DISTINCT:
                await asyncio.sleep(0.5)
            drained = time.monotonic() - started
            await asyncio.sleep(3)  # anything still trickling in would be a duplicate: give it time to show
            counts = await _db_counts(db_url)
        finally:
            for process in (server, worker):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in (server, worker):
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            await fake.stop()

    sent = [m for m in fake.messages if m.sid]
    bodies_per_recipient: dict[str, int] = {}
    for m in sent:
        bodies_per_recipient[m.to] = bodies_per_recipient.get(m.to, 0) + 1
    print(f"\nwebhooks posted: {DISTINCT + DUPLICATES} ({DUPLICATES} duplicates); inbound rows: {counts['inbound']}; "
          f"replies: {counts['replies']}; parts sent: {counts['sent_parts']}; sends at fake Twilio: {len(sent)}; "
          f"worker killed once with SIGKILL; webhooks posted in {posted:.1f}s, all answered after {drained:.1f}s")
    assert fake.errors == []
    assert counts["inbound"] == DISTINCT
    assert counts["replies"] == DISTINCT, "every distinct message has exactly one reply"
    assert counts["unfinished"] == 0, "no message was left unanswered"
    assert len(sent) == DISTINCT, "exactly one send per message at the provider"
    assert counts["sent_parts"] == DISTINCT
    assert set(bodies_per_recipient.values()) == {DISTINCT // CONVERSATIONS}
    # Per-conversation order: the provider saw each conversation's replies in the order the messages came.
    arrival = {m.sid: i for i, m in enumerate(sent)}
    for conversation, sids in counts["sids_in_order"].items():
        positions = [arrival[sid] for sid in sids]
        assert positions == sorted(positions), f"replies out of order in conversation {conversation}"


def _deliveries() -> list[dict[str, str]]:
    """160 distinct messages over 20 customers, plus 40 re-deliveries of earlier ones, in arrival order."""
    rng = random.Random(7)
    forms = []
    for n in range(DISTINCT):
        customer = n % CONVERSATIONS
        forms.append({
            "MessageSid": f"SMa{n:031x}",
            "AccountSid": ACCOUNT_SID,
            "From": f"whatsapp:+6591{customer:06d}",
            "To": FROM,
            "Body": f"Question {n // CONVERSATIONS} from customer {customer}",
            "ProfileName": f"Customer {customer}",
            "WaId": f"6591{customer:06d}",
            "NumMedia": "0",
        })
    deliveries = list(forms)
    for _ in range(DUPLICATES):
        original = rng.randrange(DISTINCT)
        position = rng.randrange(original + 1, len(deliveries) + 1)
        deliveries.insert(position, dict(forms[original]))
    return deliveries


async def _db_counts(db_url: str) -> dict:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        inbound = await conn.fetchval("SELECT count(*) FROM inbound_messages")
        replies = await conn.fetchval("SELECT count(*) FROM replies")
        unfinished = await conn.fetchval(
            "SELECT count(*) FROM inbound_messages WHERE status NOT IN ('answered', 'escalated', 'failed')")
        sent_parts = await conn.fetchval("SELECT count(*) FROM outbound_messages WHERE state = 'sent'")
        rows = await conn.fetch(
            "SELECT i.conversation_id, o.provider_message_id FROM inbound_messages i "
            "JOIN outbound_messages o ON o.inbound_message_id = i.id ORDER BY i.received_at, i.id, o.part_index")
    finally:
        await conn.close()
    sids: dict[str, list[str]] = {}
    for row in rows:
        sids.setdefault(row["conversation_id"], []).append(row["provider_message_id"])
    return {"inbound": inbound, "replies": replies, "unfinished": unfinished, "sent_parts": sent_parts,
            "sids_in_order": sids}
