"""Run the strict fake Twilio API (``tests.fakes.twilio_api``) as its own process, so the
benchmarked pipeline does not pay for the fake's work on its own event loop.

Prints ``{"base_url": …}`` once listening; on SIGTERM prints ``{"messages": N, "errors": […]}``
(what it accepted, and anything it refused as unexpected) and exits.

    python -m bench.fake_twilio --account-sid AC… --auth-token …
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys


async def serve(account_sid: str, auth_token: str) -> None:
    from tests.fakes.twilio_api import FakeTwilioApi

    fake = FakeTwilioApi(account_sid, auth_token)
    base_url = await fake.start()
    print(json.dumps({"base_url": base_url}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await fake.stop()
    accepted = sum(1 for m in fake.messages if m.answered == 201)
    print(json.dumps({"messages": accepted, "errors": fake.errors[:20]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.account_sid, args.auth_token))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
