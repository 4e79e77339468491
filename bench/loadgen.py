"""HTTP load generator for the ingress benchmark; runs as its own process so it never shares
an event loop (or a core's time slice) with the server it measures.

Two modes:

* ``closed``: ``--concurrency`` clients each send the next request when the previous one
  answers — the server's maximum throughput;
* ``open``: requests start on a fixed schedule (``--rate`` per second) whatever the server
  does; latency is measured from the *scheduled* start, so a stalled server cannot hide
  its queueing (no coordinated omission).

Every request is a distinct, valid provider delivery (its own MessageSid / update_id,
correctly signed), so the server does the full work for each. Prints one JSON line.

    python -m bench.loadgen --target twilio --url http://127.0.0.1:8000/webhooks/twilio/whatsapp \
        --auth-token T --mode closed --concurrency 32 --seconds 8
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

QUESTIONS = [
    "How much is a general service for an HDB flat?",
    "Do you work on Sundays?",
    "My aircon is leaking water, what should I do?",
    "What is the warranty on a chemical overhaul?",
    "Can I cancel my appointment?",
]
CONTACTS = 500  # distinct senders the requests rotate through


def twilio_requests(url: str, public_url: str, auth_token: str, account_sid: str, tag: str) -> Iterator[tuple[bytes, dict]]:
    validator = RequestValidator(auth_token)
    signed_url = public_url.rstrip("/") + "/" + url.split("/", 3)[3]
    for n in itertools.count():
        form = {
            "MessageSid": f"SM{tag}{n:024d}",
            "SmsMessageSid": f"SM{tag}{n:024d}",
            "AccountSid": account_sid,
            "From": f"whatsapp:+6590{n % CONTACTS:06d}",
            "To": "whatsapp:+6560000000",
            "Body": QUESTIONS[n % len(QUESTIONS)],
            "NumMedia": "0",
            "NumSegments": "1",
            "ProfileName": f"Customer {n % CONTACTS}",
            "WaId": f"6590{n % CONTACTS:06d}",
            "MessageType": "text",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(signed_url, form)}
        yield urlencode(form).encode(), headers


def telegram_requests(secret: str, tag: str) -> Iterator[tuple[bytes, dict]]:
    base = int(tag) * 10_000_000
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    for n in itertools.count():
        user = 700_000_000 + n % CONTACTS
        update = {
            "update_id": base + n,
            "message": {
                "message_id": base + n,
                "date": int(time.time()),
                "chat": {"id": user, "type": "private", "first_name": f"Customer {n % CONTACTS}"},
                "from": {"id": user, "is_bot": False, "first_name": f"Customer {n % CONTACTS}", "language_code": "en"},
                "text": QUESTIONS[n % len(QUESTIONS)],
            },
        }
        yield json.dumps(update).encode(), headers


async def _send(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> int:
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError as exc:
        return -1 if not isinstance(exc, aiohttp.ClientResponseError) else exc.status


async def closed_loop(url: str, requests: Iterator[tuple[bytes, dict]], *, concurrency: int, seconds: float,
                      warmup: float) -> tuple[list[float], Counter, float]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + seconds

        async def client() -> None:
            while (now := time.perf_counter()) < end:
                body, headers = next(requests)
                status = await _send(session, url, body, headers)
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)
                    statuses[status] += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, statuses, seconds


async def open_loop(url: str, requests: Iterator[tuple[bytes, dict]], *, rate: float, seconds: float,
                    warmup: float) -> tuple[list[float], Counter, float]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    interval = 1.0 / rate
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + seconds
        tasks: set[asyncio.Task] = set()

        async def one(scheduled: float, body: bytes, headers: dict) -> None:
            status = await _send(session, url, body, headers)
            if scheduled >= measure_from:
                latencies.append(time.perf_counter() - scheduled)
                statuses[status] += 1

        for n in itertools.count():
            scheduled = start + n * interval
            if scheduled >= end:
                break
            body, headers = next(requests)  # built before the slot, not counted in the latency
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(scheduled, body, headers))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    return latencies, statuses, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP load for the ingress benchmark")
    parser.add_argument("--target", choices=["bare", "twilio", "telegram"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--public-url", default="", help="twilio: the URL signatures are computed over")
    parser.add_argument("--auth-token", default="")
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--secret", default="", help="telegram webhook secret")
    parser.add_argument("--tag", default="1", help="digits that keep provider ids unique across runs")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()

    if args.target == "telegram":
        requests = telegram_requests(args.secret, args.tag)
    else:  # the bare handler gets the very same signed Twilio bodies
        public = args.public_url or args.url.split("/webhooks")[0]
        requests = twilio_requests(args.url, public, args.auth_token or "x", args.account_sid, args.tag)
    if args.mode == "closed":
        run = closed_loop(args.url, requests, concurrency=args.concurrency, seconds=args.seconds, warmup=args.warmup)
    else:
        run = open_loop(args.url, requests, rate=args.rate, seconds=args.seconds, warmup=args.warmup)
    latencies, statuses, seconds = asyncio.run(run)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    print(json.dumps({"requests": sum(statuses.values()), "ok": ok, "statuses": {str(k): v for k, v in statuses.items()},
                      "seconds": seconds, "latencies": latencies}))


if __name__ == "__main__":
    main()
