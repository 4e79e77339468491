"""Ingress benchmark: how many webhook deliveries per second ``supportlah serve`` accepts.

A real ``supportlah serve`` process (production mode: Postgres + Redis, arq queue, no
worker running, so nothing but ingress competes for the CPU) receives correctly
signed Twilio WhatsApp webhooks and secret-checked Telegram updates; each is verified,
stored (committed) and enqueued before the 200. The baseline is a bare aiohttp handler
(``bench.bare_server``) fed the same bodies in the same run. Load comes from a separate
process (``bench.loadgen``), over loopback, bounded in time:

* saturation: closed loop, ``--concurrency`` clients → maximum requests/s;
* moderate load: open loop at ``--rate`` requests/s → p50/p99 latency from the scheduled start.

Afterwards the stored rows and queued jobs are counted, to show every 200 was real work.

    python -m bench.ingress [--seconds 6] [--concurrency 32] [--rate 100]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import (
    child_env,
    free_port,
    latency_summary,
    machine,
    pyplot,
    python_module_command,
    run_benchmark,
    save_plot,
    table,
)

NAME = "ingress"
ACCOUNT_SID = "AC" + "b3c4" * 8
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
TELEGRAM_SECRET = "bench-webhook-secret"
TARGETS = {  # name -> (path, loadgen target)
    "bare aiohttp handler": ("/webhooks/twilio/whatsapp", "bare"),
    "Twilio WhatsApp webhook": ("/webhooks/twilio/whatsapp", "twilio"),
    "Telegram webhook": ("/webhooks/telegram", "telegram"),
}


async def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before it was ready")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


async def _loadgen(target: str, url: str, public_url: str, tag: int, args: argparse.Namespace, *, mode: str) -> dict:
    command = python_module_command(
        "bench.loadgen", "--target", target, "--url", url, "--public-url", public_url,
        "--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID, "--secret", TELEGRAM_SECRET, "--tag", str(tag),
        "--mode", mode, "--concurrency", str(args.concurrency), "--rate", str(args.rate),
        "--seconds", str(args.seconds), "--warmup", str(args.warmup),
    )
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env=child_env())
    out, err = await asyncio.wait_for(process.communicate(), timeout=args.seconds + args.warmup + 120)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    raw = json.loads(out)
    return {"requests": raw["requests"], "ok": raw["ok"], "statuses": raw["statuses"],
            "requests_per_second": round(raw["ok"] / raw["seconds"], 1), **latency_summary(raw["latencies"])}


async def _count_work(database_url: str, redis_url: str, prefix: str) -> dict:
    import asyncpg
    from redis.asyncio import Redis

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch("SELECT channel, count(*) AS n FROM inbound_messages GROUP BY channel")
    finally:
        await connection.close()
    redis = Redis.from_url(redis_url)
    try:
        queued = await redis.zcard(f"{prefix}:queue")
    finally:
        await redis.aclose()
    return {"stored_by_channel": {r["channel"]: r["n"] for r in rows}, "queued_jobs": queued}


async def _accept_cost(settings_kwargs: dict, n: int = 320, concurrency: int = 32) -> dict:
    """Where an accepted webhook's server time goes, in this process against the same Postgres and
    Redis: the ingress (commit + enqueue) one message at a time, then ``concurrency`` at once (group
    commit); wall and CPU milliseconds and SQL statements per message for each."""
    from sqlalchemy import event

    from channels.messages import Channel, InboundMessage
    from config.settings import load_settings
    from supportlah.container import build

    container = await build(load_settings(_env_file=None, **settings_kwargs), start_queue=False)
    counter = iter(range(10**9))

    def message() -> InboundMessage:
        i = next(counter)
        return InboundMessage(channel=Channel.WHATSAPP, provider_message_id=f"SMcost{i:026d}",
                              sender_id=f"whatsapp:+6592{i % 500:06d}", text="Do you work on Sundays?")

    async def one_by_one(messages: list[InboundMessage]) -> None:
        for m in messages:
            await container.ingress.accept(m)

    async def together(messages: list[InboundMessage]) -> None:
        for start in range(0, len(messages), concurrency):
            await asyncio.gather(*(container.ingress.accept(m) for m in messages[start:start + concurrency]))

    statements: list[str] = []
    event.listen(container.engine.sync_engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: statements.append(statement))
    costs = {}
    try:
        for name, path in (("one_at_a_time", one_by_one), (f"{concurrency}_concurrent", together)):
            await path([message() for _ in range(concurrency)])  # warm: connections, statement caches
            messages = [message() for _ in range(n)]
            statements.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            await path(messages)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            costs[name] = {"wall_ms": round(wall / n * 1000, 3), "cpu_ms": round(cpu / n * 1000, 3),
                           "sql_statements_per_message": round(len(statements) / n, 2)}
    finally:
        await container.close()
    return {"messages": n, **costs}


async def run(args: argparse.Namespace) -> dict:
    from supportlah import migrate
    from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI
    from tests.services import fresh_postgres, fresh_redis_prefix

    info = machine()
    telegram = FakeTelegramAPI()
    await telegram.start()
    port, bare_port = free_port(), free_port()
    public_url = f"http://127.0.0.1:{port}"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp:
        async with fresh_postgres() as db_url, fresh_redis_prefix() as (redis_url, prefix):
            await migrate.upgrade(db_url)
            env = child_env(
                SUPPORTLAH_DATA_DIR=str(Path(tmp) / "data"), SUPPORTLAH_DATABASE_URL=db_url,
                SUPPORTLAH_REDIS_URL=redis_url, SUPPORTLAH_REDIS_PREFIX=prefix, SUPPORTLAH_PORT=str(port),
                SUPPORTLAH_PUBLIC_URL=public_url, SUPPORTLAH_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                SUPPORTLAH_TWILIO_AUTH_TOKEN=AUTH_TOKEN, SUPPORTLAH_TWILIO_WHATSAPP_FROM="whatsapp:+6560000000",
                SUPPORTLAH_TWILIO_API_BASE_URL="http://127.0.0.1:9", SUPPORTLAH_TELEGRAM_BOT_TOKEN=TEST_TOKEN,
                SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET, SUPPORTLAH_TELEGRAM_API_BASE_URL=telegram.url,
            )
            log = (Path(tmp) / "serve.log").open("wb")
            servers = [
                subprocess.Popen(python_module_command("supportlah.cli", "serve"), env=env, cwd=tmp,
                                 stdout=log, stderr=log),
                subprocess.Popen(python_module_command("bench.bare_server", "--port", str(bare_port)),
                                 env=child_env(), cwd=tmp, stdout=log, stderr=log),
            ]
            try:
                await _wait_ready(f"{public_url}/healthz", servers[0])
                await _wait_ready(f"http://127.0.0.1:{bare_port}/healthz", servers[1])
                tag = 1
                for name, (path, target) in TARGETS.items():
                    base = f"http://127.0.0.1:{bare_port if target == 'bare' else port}"
                    results[name] = {}
                    for mode in ("closed", "open"):
                        results[name][mode] = await _loadgen(target, base + path, public_url, tag, args, mode=mode)
                        tag += 1
                work = await _count_work(db_url, redis_url, prefix)
            finally:
                for server in servers:
                    server.terminate()
                for server in servers:
                    try:
                        server.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        server.kill()
                log.close()
            cost = await _accept_cost({"data_dir": Path(tmp) / "cost", "database_url": db_url,
                                       "redis_url": redis_url, "redis_prefix": prefix})
    await telegram.close()
    if telegram.errors:
        raise RuntimeError(f"the fake Telegram API saw unexpected calls: {telegram.errors}")

    bare = results["bare aiohttp handler"]["closed"]["requests_per_second"]
    rows = {}
    for name, modes in results.items():
        saturation, moderate = modes["closed"], modes["open"]
        rows[name] = {
            "max_requests_per_second": saturation["requests_per_second"],
            "share_of_bare": round(saturation["requests_per_second"] / bare, 3) if bare else None,
            "saturation_p50_ms": saturation["p50_ms"], "saturation_p99_ms": saturation["p99_ms"],
            "moderate_p50_ms": moderate["p50_ms"], "moderate_p99_ms": moderate["p99_ms"],
            "moderate_requests_per_second": moderate["requests_per_second"],
            "non_2xx": {k: v for k, v in {**saturation["statuses"], **moderate["statuses"]}.items()
                        if not k.startswith("2")},
        }
    sent = {"whatsapp": sum(results["Twilio WhatsApp webhook"][m]["ok"] for m in ("closed", "open")),
            "telegram": sum(results["Telegram webhook"][m]["ok"] for m in ("closed", "open"))}
    warmups = {  # requests answered during the warm-up seconds are stored too, but not counted above
        "note": "stored counts include requests sent during each run's warm-up, which latency/throughput exclude"}
    return {
        "name": NAME,
        "machine": info,
        "setup": {"backend": "production mode: Postgres + Redis/arq, no worker running", "seconds": args.seconds,
                  "warmup_seconds": args.warmup, "concurrency": args.concurrency, "moderate_rate": args.rate,
                  "load_generator": "bench.loadgen (aiohttp client, separate process, loopback)"},
        "targets": {"share_of_bare": 0.4, "moderate_p99_ms": 20.0},
        "results": rows,
        "raw": results,
        "work_done": {**work, "answered_2xx_in_measured_windows": sent, **warmups},
        "accept_cost": cost,
    }


def report(data: dict) -> str:
    rows = [[name, r["max_requests_per_second"], r["share_of_bare"], r["saturation_p50_ms"], r["saturation_p99_ms"],
             r["moderate_p50_ms"], r["moderate_p99_ms"]] for name, r in data["results"].items()]
    setup = data["setup"]
    return table(["endpoint", "max req/s", "× bare", f"p50 ms @ {setup['concurrency']} conc.",
                  f"p99 ms @ {setup['concurrency']} conc.", f"p50 ms @ {setup['moderate_rate']:g}/s",
                  f"p99 ms @ {setup['moderate_rate']:g}/s"], rows)


def plot(data: dict) -> Path:
    plt = pyplot()
    names = list(data["results"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(names, [data["results"][n]["max_requests_per_second"] for n in names], color=["#999", "#2a7", "#27a"])
    left.set_title(f"max requests/s ({data['setup']['concurrency']} concurrent clients)")
    left.tick_params(axis="x", labelrotation=12)
    x = range(len(names))
    right.bar([i - 0.2 for i in x], [data["results"][n]["moderate_p50_ms"] for n in names], 0.4, label="p50")
    right.bar([i + 0.2 for i in x], [data["results"][n]["moderate_p99_ms"] for n in names], 0.4, label="p99")
    right.axhline(data["targets"]["moderate_p99_ms"], color="red", linestyle="--", linewidth=1, label="p99 target")
    right.set_xticks(list(x), names, rotation=12)
    right.set_title(f"latency ms at {data['setup']['moderate_rate']:g} requests/s")
    right.legend()
    return save_plot(fig, NAME)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="webhook ingress throughput and latency vs a bare aiohttp handler")
    p.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rate", type=float, default=100.0, help="moderate load, requests/s")
    return p


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
