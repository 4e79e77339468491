"""Start a fake provider's aiohttp app on 127.0.0.1 with a free port."""
from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, str]:
    """The running app's runner (call ``cleanup()`` to stop it) and its ``http://127.0.0.1:PORT`` address."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
