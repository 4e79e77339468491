"""Helpers to run the real pipeline in a test, in either mode, and to watch what it sends."""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import aiohttp

from channels.messages import Channel, InboundMessage, new_id
from config.settings import Settings
from supportlah import migrate
from supportlah.container import Container, build
from workers.local import InProcessQueue


# Tests of the pipeline's mechanics count every send. The privacy notice on first contact and the
# "our team is away" note outside business hours are product behaviour with tests of their own;
# here they would only make the counts depend on the clock.
MECHANICS = {"pdpa_consent_mode": "off", "business_hours": "daily 00:00-24:00"}


@asynccontextmanager
async def running_container(settings: Settings, *, start_queue: bool = True):
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=start_queue)
    try:
        yield container
    finally:
        await container.close()


async def drain(container: Container, timeout: float = 120.0) -> None:
    """Process everything queued: the in-process workers, or an arq worker in burst mode."""
    if isinstance(container.queue, InProcessQueue):
        container.queue.start()
        await container.queue.join(timeout)
        return
    from supportlah.worker import make_worker

    worker = make_worker(container.settings, container=container, burst=True, handle_signals=False, poll_delay=0)
    try:
        await asyncio.wait_for(worker.main(), timeout)
    finally:
        await worker.close()


def web_message(visitor: str, text: str, provider_id: str | None = None) -> InboundMessage:
    return InboundMessage(channel=Channel.WEB, provider_message_id=provider_id or new_id(), sender_id=visitor,
                          text=text)


class SentEvents:
    """Records every web-chat event the hub publishes (what a browser would receive)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def attach(self, container: Container, visitor: str) -> None:
        async def record(event: dict) -> None:
            self.events.append((visitor, event))

        container.hub.connect(visitor, record)

    def replies(self, visitor: str | None = None) -> list[dict]:
        return [e for v, e in self.events if e["type"] == "reply" and (visitor is None or v == visitor)]


class RecordingQueue:
    """The queue seam (a protocol): remembers which message ids were enqueued, runs nothing."""

    def __init__(self) -> None:
        self.enqueued: list[str] = []

    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None:
        self.enqueued.append(message_id)

    async def enqueue_many(self, message_ids) -> None:  # noqa: ANN001
        self.enqueued.extend(message_ids)

    async def close(self) -> None:
        return None


@asynccontextmanager
async def sqlite_store(path):  # noqa: ANN001
    """A real MessageStore on a fresh SQLite file (tables created from the models)."""
    from config.sql import create_engine, session_factory
    from memory.store import MessageStore
    from supportlah.schema import metadata

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield MessageStore(session_factory(engine))
    finally:
        await engine.dispose()


async def wait_http(url: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (a server process starting up)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never became ready")
