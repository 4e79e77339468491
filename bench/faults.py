"""Fault injection: production mode under the faults a real deployment meets.

One cluster of real processes — ``supportlah serve`` and two ``supportlah worker`` on a fresh
Postgres database and a Redis server of our own (started on a free port, so it can be
killed), with the strict fake Twilio and Telegram APIs in this process — and one scenario
after another, each over its own customers:

===================  ====================================================================
baseline             signed WhatsApp webhooks (10 % redelivered), no fault
worker_sigkill       one worker SIGKILLed every few seconds and restarted at once
redis_restart        our Redis SIGKILLed mid-run and started again empty after a few seconds
postgres_terminate   every connection to the test database terminated (pg_terminate_backend), repeatedly
lost_responses       Twilio accepts a share of the sends but the connection drops before its answer
send_storm           a share of the sends answered 429 (Retry-After: 1) or 500
malformed            good webhooks mixed with many bad requests of every kind (Twilio forms with
                     raw \\xff or an unknown charset, NUL bytes, 100,000-character bodies;
                     Telegram updates with wrong types, missing chat, 50,000-deep JSON; web-chat
                     posts with bad bytes, wrong types, deep JSON)
===================  ====================================================================

Each scenario reports accepted, answered, lost, duplicated, out-of-order, 5xx and the time
from its last fault until its last message was answered. The bar: 0 lost, 0 duplicated,
0 out of order, 0 5xx, drained within 60 s of the last fault.

    python -m bench.faults            # the full run: writes bench/results/faults.json
    python -m bench.faults --reduced  # the size tests/test_faults.py runs
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from twilio.request_validator import RequestValidator

from bench.common import child_env, free_port, machine, python_module_command, table, write_result

ACCOUNT_SID = "AC" + "fa17" * 8
AUTH_TOKEN = "faults-auth-token-0123456789abcdef"
BUSINESS = "whatsapp:+6560000017"
TELEGRAM_SECRET = "faults-telegram-secret"
WHATSAPP_PATH = "/webhooks/twilio/whatsapp"
DRAIN_LIMIT_SECONDS = 60.0
SCENARIOS = ("baseline", "worker_sigkill", "redis_restart", "postgres_terminate", "lost_responses",
             "send_storm", "malformed")


@dataclass(frozen=True)
class Sizes:
    customers: int = 40  # per scenario
    messages: int = 200  # distinct good messages per scenario (plus 10 % redeliveries)
    post_rate: float = 5.0  # webhooks per second: below what two workers answer on a busy 2-core box
    kills: int = 10
    kill_every: float = 3.0
    redis_down_seconds: float = 5.0
    pg_terminations: int = 5
    lost_response_rate: float = 0.1
    storm_rate: float = 0.3
    malformed_each: int = 1000  # of every refused kind
    cleaned_each: int = 100  # of the kinds that are cleaned and answered (NUL bytes)
    huge_texts: int = 10  # 100,000-character bodies (cut to 1,600, then answered: costly to embed)


FULL = Sizes()
REDUCED = Sizes(customers=8, messages=24, post_rate=20.0, kills=3, kill_every=2.5, redis_down_seconds=3.0,
                pg_terminations=2, malformed_each=15, cleaned_each=4, huge_texts=2)


@dataclass
class Report:
    scenario: str
    accepted: int = 0
    answered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    http_5xx: int = 0
    malformed_sent: int = 0
    malformed_stored: int = 0
    drain_after_last_fault_s: float | None = None
    notes: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.lost == self.duplicated == self.out_of_order == self.http_5xx == self.malformed_stored == 0
                and self.drain_after_last_fault_s is not None
                and self.drain_after_last_fault_s <= DRAIN_LIMIT_SECONDS)


# ------------------------------------------------------------------ the cluster
class Cluster:
    """serve + 2 workers + our own Redis on Postgres, fakes in this process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.port = free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.redis: subprocess.Popen | None = None
        self.serve: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = [None, None]
        self.restarts = 0
        self.http: aiohttp.ClientSession | None = None
        self._validator = RequestValidator(AUTH_TOKEN)
        self.db_url = ""

    async def start(self, stack: AsyncExitStack) -> None:
        from supportlah import migrate
        from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI
        from tests.fakes.twilio_api import FakeTwilioApi
        from tests.services import fresh_postgres

        self.twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
        await self.twilio.start()
        stack.push_async_callback(self.twilio.stop)
        self.telegram = FakeTelegramAPI()
        await self.telegram.start()
        stack.push_async_callback(self.telegram.close)
        self.db_url = await stack.enter_async_context(fresh_postgres())
        await migrate.upgrade(self.db_url)
        self.start_redis()
        stack.callback(self.stop_processes)
        self.env = child_env(
            SUPPORTLAH_DATA_DIR=str(self.workdir / "data"), SUPPORTLAH_DATABASE_URL=self.db_url,
            SUPPORTLAH_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0", SUPPORTLAH_REDIS_PREFIX="faults",
            SUPPORTLAH_PORT=str(self.port), SUPPORTLAH_PUBLIC_URL=self.public_url,
            SUPPORTLAH_TWILIO_ACCOUNT_SID=ACCOUNT_SID, SUPPORTLAH_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            SUPPORTLAH_TWILIO_WHATSAPP_FROM=BUSINESS, SUPPORTLAH_TWILIO_API_BASE_URL=self.twilio.base_url,
            SUPPORTLAH_TWILIO_SEND_TIMEOUT_SECONDS="5",
            SUPPORTLAH_TELEGRAM_BOT_TOKEN=TEST_TOKEN, SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
            SUPPORTLAH_TELEGRAM_API_BASE_URL=self.telegram.url,
            SUPPORTLAH_MAX_JOBS="8", SUPPORTLAH_JOB_TIMEOUT_SECONDS="30",
            SUPPORTLAH_CONVERSATION_LOCK_SECONDS="10", SUPPORTLAH_SEND_GUARD_SECONDS="10",
            SUPPORTLAH_RECOVERY_AFTER_SECONDS="30", SUPPORTLAH_WORKER_HEALTH_SECONDS="2",
            SUPPORTLAH_LOG_LEVEL="WARNING",
            # Count only the answers: no privacy notice, no out-of-hours note (both tested elsewhere).
            SUPPORTLAH_PDPA_CONSENT_MODE="off", SUPPORTLAH_BUSINESS_HOURS="daily 00:00-24:00",
            SUPPORTLAH_RATE_LIMIT_CONTACT_PER_MINUTE="100000", SUPPORTLAH_RATE_LIMIT_IP_PER_MINUTE="10000000",
        )
        self.serve = self._spawn(["serve"], "serve")
        for index in range(len(self.workers)):
            self.start_worker(index)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16))
        stack.push_async_callback(self.http.close)
        from tests.harness import wait_http

        await wait_http(f"{self.public_url}/readyz", timeout=120)  # database, Redis, index and a worker

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        # One process owns an embedded index: each gets its own data dir (production would use a Qdrant server).
        env = {**self.env, "SUPPORTLAH_DATA_DIR": str(self.workdir / "data" / name)}
        return subprocess.Popen(python_module_command("supportlah.cli", *args), env=env, cwd=self.workdir,
                                stdout=log, stderr=log)

    # --- processes -------------------------------------------------------------
    def start_redis(self) -> None:
        log = (self.logs / "redis.log").open("ab")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", self.redis_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill_redis(self) -> None:
        if self.redis is not None:
            self.redis.send_signal(signal.SIGKILL)
            self.redis.wait(10)

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._spawn(["worker"], f"worker-{index}")

    def kill_worker(self, index: int) -> None:
        worker = self.workers[index]
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)

    def crashed_workers(self) -> list[int]:
        """Exit codes of workers that died on their own (a worker must never exit by itself)."""
        return [w.returncode for w in self.workers if w is not None and w.poll() is not None and w.returncode != -9]

    def stop_processes(self) -> None:
        running = [p for p in (self.serve, *self.workers) if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    async def terminate_postgres(self) -> int:
        name = self.db_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(self.db_url.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)[0]
                                      + "/postgres")
        try:
            return len(await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name))
        finally:
            await admin.close()

    # --- requests ----------------------------------------------------------------
    def signed_headers(self, form: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": self._validator.compute_signature(self.public_url + WHATSAPP_PATH, form)}

    async def post(self, path: str, **kwargs: object) -> int:
        """POST and return the status (0: no HTTP answer at all, which counts as a failure too)."""
        for attempt in range(3):
            try:
                async with self.http.post(self.public_url + path, **kwargs) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                await asyncio.sleep(0.2 * (attempt + 1))  # a sender retries a dropped connection
        return 0


# ------------------------------------------------------------------ scenarios
@dataclass
class Traffic:
    good: list[dict[str, str]]  # distinct signed forms, in the order they are first posted
    deliveries: list[tuple[str, dict]]  # (kind, request) in posting order
    customers: list[str]


def _traffic(scenario_index: int, sizes: Sizes, rng: random.Random, *, malformed: bool) -> Traffic:
    customers = [f"whatsapp:+65{8 + scenario_index}{n:07d}" for n in range(sizes.customers)]
    good = []
    for n in range(sizes.messages):
        customer = customers[n % len(customers)]
        good.append({"MessageSid": f"SM{scenario_index:04x}{n:028x}", "AccountSid": ACCOUNT_SID, "From": customer,
                     "To": BUSINESS, "Body": f"Question {n // len(customers)}: how much is a general service?",
                     "ProfileName": f"Customer {n % len(customers)}", "NumMedia": "0"})
    deliveries: list[tuple[str, dict]] = [("good", form) for form in good]
    for _ in range(sizes.messages // 10):  # Twilio redelivers some webhooks
        original = rng.randrange(len(good))
        deliveries.insert(rng.randrange(original + 1, len(deliveries) + 1), ("good", dict(good[original])))
    if malformed:
        extra = _malformed(scenario_index, sizes, customers, good)
        for item in extra:
            deliveries.insert(rng.randrange(len(deliveries) + 1), item)
    return Traffic(good=good, deliveries=deliveries, customers=customers)


def _telegram_update(update_id: int, **message: object) -> dict:
    body = {"message_id": update_id, "date": 1_700_000_000, "chat": {"id": 4242, "type": "private"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Fuzz"}, "text": "hello"}
    body.update(message)
    return {"update_id": update_id, "message": body}


def _malformed(scenario_index: int, sizes: Sizes, customers: list[str], good: list[dict]) -> list[tuple[str, dict]]:
    """Bad requests of every kind. "cleaned" ones (NUL bytes, oversize bodies) are good messages
    once cleaned: they join ``good`` and must be answered; the rest must be refused."""
    items: list[tuple[str, dict]] = []
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    json_headers = {"Content-Type": "application/json"}
    tg = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    deep = "[" * 50_000 + "]" * 50_000
    for n in range(sizes.malformed_each):
        uid = scenario_index * 10_000_000 + n * 16
        items += [
            ("twilio_raw_xff", {"path": WHATSAPP_PATH, "data": b"MessageSid=SMx&From=whatsapp%3A%2B65&Body=\xff\xfe",
                                "headers": form_headers}),
            ("twilio_unknown_charset", {"path": WHATSAPP_PATH, "data": b"MessageSid=SMx&From=x&Body=hi",
                                        "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=x-nope"}}),
            ("telegram_string_message", {"path": "/webhooks/telegram", "headers": tg,
                                         "data": json.dumps({"update_id": uid + 1, "message": "hello"})}),
            ("telegram_int_text", {"path": "/webhooks/telegram", "headers": tg,
                                   "data": json.dumps(_telegram_update(uid + 2, text=12345))}),
            ("telegram_missing_chat", {"path": "/webhooks/telegram", "headers": tg,
                                       "data": json.dumps({"update_id": uid + 3, "message": {
                                           "message_id": 1, "date": 1_700_000_000, "text": "hi"}})}),
            ("telegram_object_caption", {"path": "/webhooks/telegram", "headers": tg,
                                         "data": json.dumps(_telegram_update(uid + 4, caption={"x": 1}))}),
            ("telegram_update_id_true", {"path": "/webhooks/telegram", "headers": tg,
                                         "data": json.dumps({**_telegram_update(uid + 5), "update_id": True})}),
            ("telegram_chat_id_string", {"path": "/webhooks/telegram", "headers": tg, "data": json.dumps(
                _telegram_update(uid + 6, chat={"id": "not-a-number", "type": "private"}))}),
            ("telegram_deep_json", {"path": "/webhooks/telegram", "headers": tg, "data": deep}),
            ("web_raw_xff", {"path": "/api/chat", "headers": json_headers,
                             "data": b'{"visitor_id": "fuzz-visitor-01", "text": "\xff"}'}),
            ("web_deep_json", {"path": "/api/chat", "headers": json_headers, "data": "[" * 20_000 + "]" * 20_000}),
            ("web_int_text", {"path": "/api/chat", "headers": json_headers,
                              "data": json.dumps({"visitor_id": "fuzz-visitor-01", "text": 5})}),
            ("web_string_body", {"path": "/api/chat", "headers": json_headers, "data": json.dumps("hello")}),
        ]
    cleaned = [("twilio_nul_body", "Is there a NUL\x00 here?\x07", n) for n in range(sizes.cleaned_each)]
    cleaned += [("twilio_100k_body", "How much is a general service? " * 3300, n) for n in range(sizes.huge_texts)]
    for k, (kind, body, n) in enumerate(cleaned):
        form = {"MessageSid": f"SM{scenario_index:04x}f{k:027x}", "AccountSid": ACCOUNT_SID,
                "From": customers[k % len(customers)], "To": BUSINESS, "Body": body, "NumMedia": "0"}
        good.append(form)
        items.append((kind, {"form": form}))
    return items


async def _post_all(cluster: Cluster, traffic: Traffic, sizes: Sizes,
                    statuses: list[tuple[str, str | None, int]]) -> None:
    """Post in arrival order at ``post_rate`` per second, a few in flight at once."""
    gate = asyncio.Semaphore(8)
    interval = 1.0 / sizes.post_rate

    async def one(kind: str, request: dict) -> None:
        async with gate:
            if kind == "good" or "form" in request:
                form = request if kind == "good" else request["form"]
                status = await cluster.post(WHATSAPP_PATH, data=form, headers=cluster.signed_headers(form))
                statuses.append((kind, form["MessageSid"], status))
            else:
                status = await cluster.post(request["path"], data=request["data"], headers=request["headers"])
                statuses.append((kind, None, status))

    tasks = []
    for kind, request in traffic.deliveries:
        tasks.append(asyncio.create_task(one(kind, request)))
        if kind == "good" or "form" in request:  # the flood of bad requests comes as fast as it can
            await asyncio.sleep(interval)
        else:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)


Fault = Callable[[Cluster, Sizes, asyncio.Event], Awaitable[dict]]


async def _no_fault(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    await posting_done.wait()
    return {}


async def _kill_workers(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    for _ in range(sizes.kills):
        await asyncio.sleep(sizes.kill_every)
        cluster.kill_worker(0)
        cluster.start_worker(0)  # a supervisor (systemd, compose) restarts it at once: a crash loop
    await posting_done.wait()
    return {"sigkills": sizes.kills}


async def _restart_redis(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    await asyncio.sleep(2.0)
    cluster.kill_redis()
    await asyncio.sleep(sizes.redis_down_seconds)
    cluster.start_redis()  # empty: the queue, locks and guards are gone
    await posting_done.wait()
    return {"redis_down_seconds": sizes.redis_down_seconds}


async def _terminate_postgres(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    terminated = 0
    for _ in range(sizes.pg_terminations):
        await asyncio.sleep(1.5)
        terminated += await cluster.terminate_postgres()
    await posting_done.wait()
    return {"terminations": sizes.pg_terminations, "connections_terminated": terminated}


async def _lose_responses(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    before = cluster.twilio.lost_responses
    cluster.twilio.lose_response_next(2)  # at least two, whatever the dice say
    cluster.twilio.drop_rate = sizes.lost_response_rate
    await posting_done.wait()
    await asyncio.sleep(2.0)  # the replies of the last messages go out under the fault too
    cluster.twilio.drop_rate = 0.0
    return {"responses_lost": cluster.twilio.lost_responses - before}


async def _storm(cluster: Cluster, sizes: Sizes, posting_done: asyncio.Event) -> dict:
    refused_before = sum(1 for m in cluster.twilio.messages if m.answered in (429, 500))
    cluster.twilio.fail_next("429", retry_after="1")  # at least one of each, whatever the dice say
    cluster.twilio.fail_next("500")
    cluster.twilio.failure_rate = sizes.storm_rate
    await posting_done.wait()
    await asyncio.sleep(2.0)
    cluster.twilio.failure_rate = 0.0
    return {"sends_refused": sum(1 for m in cluster.twilio.messages if m.answered in (429, 500)) - refused_before}


FAULTS: dict[str, Fault] = {
    "baseline": _no_fault, "worker_sigkill": _kill_workers, "redis_restart": _restart_redis,
    "postgres_terminate": _terminate_postgres, "lost_responses": _lose_responses, "send_storm": _storm,
    "malformed": _no_fault,
}


async def run_scenario(cluster: Cluster, index: int, name: str, sizes: Sizes) -> Report:
    rng = random.Random(1000 + index)
    traffic = _traffic(index, sizes, rng, malformed=name == "malformed")
    statuses: list[tuple[str, str | None, int]] = []
    posting_done = asyncio.Event()
    fault = asyncio.create_task(FAULTS[name](cluster, sizes, posting_done))
    started = time.monotonic()
    await _post_all(cluster, traffic, sizes, statuses)
    posting_done.set()
    notes = await fault
    last_fault = time.monotonic()
    report = Report(name, notes={**notes, "posting_s": round(last_fault - started, 1)})
    good_sids = {form["MessageSid"] for form in traffic.good}
    expected = len(good_sids)
    deadline = last_fault + DRAIN_LIMIT_SECONDS * 2
    answered_at = None
    while time.monotonic() < deadline:
        if (await _measure(cluster, traffic)).answered >= expected:
            answered_at = time.monotonic()
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3.0)  # anything still trickling out would be a duplicate: give it time to show
    measured = await _measure(cluster, traffic)
    report.accepted = len({sid for _, sid, status in statuses if sid is not None and status == 200})
    report.answered, report.duplicated, report.out_of_order = (measured.answered, measured.duplicated,
                                                               measured.out_of_order)
    report.lost = expected - measured.answered
    report.http_5xx = sum(1 for _, _, status in statuses if status >= 500 or status == 0)
    bad = [(kind, status) for kind, sid, status in statuses if sid is None]
    report.malformed_sent = len(bad)
    report.malformed_stored = await _stored_outside_whatsapp(cluster)
    if bad:
        report.notes["malformed_statuses"] = _histogram(bad)
    report.drain_after_last_fault_s = round(answered_at - last_fault, 1) if answered_at is not None else None
    crashed = cluster.crashed_workers()
    if crashed:
        report.notes["workers_exited"] = crashed
        report.lost = max(report.lost, 1)  # a worker that exits by itself is a failure, whatever was answered
    return report


def _histogram(items: list[tuple[str, int]]) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for kind, status in items:
        counts.setdefault(kind, {}).setdefault(str(status), 0)
        counts[kind][str(status)] += 1
    return counts


@dataclass
class _Measured:
    answered: int
    duplicated: int
    out_of_order: int


async def _measure(cluster: Cluster, traffic: Traffic) -> _Measured:
    """From the store and the fake: which messages have every part sent (with a sid Twilio
    really has), which Twilio messages were sent but never recorded (duplicates), and whether
    each conversation's replies reached Twilio in the order the messages came."""
    conn = await asyncpg.connect(cluster.db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT i.id, i.sender_id, i.status, o.provider_message_id, o.state FROM inbound_messages i "
            "LEFT JOIN outbound_messages o ON o.inbound_message_id = i.id "
            "WHERE i.sender_id = ANY($1::text[]) ORDER BY i.received_at, i.id, o.part_index", traffic.customers)
    finally:
        await conn.close()
    customers = set(traffic.customers)
    accepted_at_twilio = [m for m in cluster.twilio.messages if m.sid and m.to in customers]
    position = {m.sid: i for i, m in enumerate(accepted_at_twilio)}
    messages: dict[str, list] = {}
    order: dict[str, list[str]] = {}
    for row in rows:
        messages.setdefault(row["id"], []).append(row)
    recorded = set()
    answered = 0
    for message_id, parts in messages.items():
        sids = [p["provider_message_id"] for p in parts if p["provider_message_id"]]
        recorded.update(sids)
        done = parts[0]["status"] in ("answered", "escalated")
        if done and sids and all(p["state"] in ("sent", "delivered", "read") for p in parts) \
                and all(sid in position for sid in sids):
            answered += 1
            order.setdefault(parts[0]["sender_id"], []).extend(sids)
    duplicated = sum(1 for m in accepted_at_twilio if m.sid not in recorded)
    out_of_order = sum(1 for sids in order.values()
                       if [position[s] for s in sids] != sorted(position[s] for s in sids))
    return _Measured(answered=answered, duplicated=duplicated, out_of_order=out_of_order)


async def _stored_outside_whatsapp(cluster: Cluster) -> int:
    """Every malformed Telegram and web-chat request must store nothing (no good traffic uses them)."""
    conn = await asyncpg.connect(cluster.db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbound_messages WHERE channel <> 'whatsapp'"))
    finally:
        await conn.close()


async def run_suite(sizes: Sizes, scenarios: tuple[str, ...] = SCENARIOS, *,
                    keep_logs: Path | None = None) -> list[Report]:
    workdir = Path(tempfile.mkdtemp(prefix="supportlah-faults-"))
    reports = []
    try:
        async with AsyncExitStack() as stack:
            cluster = Cluster(workdir)
            await cluster.start(stack)
            for index, name in enumerate(scenarios):
                report = await run_scenario(cluster, index, name, sizes)
                print(_row(report), flush=True)
                reports.append(report)
            fake_errors = cluster.twilio.errors + cluster.telegram.errors
            if fake_errors:
                reports[-1].notes["fake_errors"] = fake_errors[:10]
    finally:
        if keep_logs is not None:
            shutil.copytree(workdir / "logs", keep_logs, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return reports


HEADER = ("scenario", "accepted", "answered", "lost", "duplicated", "out of order", "5xx", "malformed sent",
          "malformed stored", "drained after last fault (s)")


def _row(report: Report) -> str:
    return " | ".join(str(v) for v in _cells(report))


def _cells(report: Report) -> list[object]:
    return [report.scenario, report.accepted, report.answered, report.lost, report.duplicated, report.out_of_order,
            report.http_5xx, report.malformed_sent, report.malformed_stored, report.drain_after_last_fault_s]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fault injection against real serve + worker processes")
    parser.add_argument("--reduced", action="store_true", help="the small sizes tests/test_faults.py runs")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    parser.add_argument("--logs", type=Path, help="copy the processes' logs here")
    args = parser.parse_args(argv)
    sizes = REDUCED if args.reduced else FULL
    info = machine()
    started = time.monotonic()
    reports = asyncio.run(run_suite(sizes, tuple(args.scenario or SCENARIOS), keep_logs=args.logs))
    print(table(HEADER, [_cells(r) for r in reports]))
    result = {"machine": info, "sizes": asdict(sizes), "wall_s": round(time.monotonic() - started, 1),
              "drain_limit_s": DRAIN_LIMIT_SECONDS, "all_ok": all(r.ok for r in reports),
              "scenarios": [{**asdict(r), "ok": r.ok} for r in reports]}
    if not args.reduced and not args.scenario:
        print(f"wrote {write_result('faults', result)}")
    return 0 if result["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
