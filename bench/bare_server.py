"""The ingress benchmark's baseline: an aiohttp server whose handler reads the body and answers 200.

Same framework, same process model and the same request bodies as ``supportlah serve``,
so the difference is exactly what our webhook does (verify, parse, store, enqueue, log).

    python -m bench.bare_server --port 8100
"""
from __future__ import annotations

import argparse

from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.add_routes([web.get("/healthz", ok), web.post("/{tail:.*}", ok)])
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
