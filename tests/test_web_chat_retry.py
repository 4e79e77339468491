"""A web-chat client that retries a POST (same client_id) gets the answer it missed, at once,
from the real app over the real pipeline, in both modes."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from supportlah.app import create_app
from tests.harness import MECHANICS, running_container
from workers.local import InProcessQueue


@asynccontextmanager
async def answering_app(settings):  # noqa: ANN001
    """The aiohttp app with workers answering: in-process (embedded) or an arq worker (production)."""
    async with running_container(settings) as container:
        worker_task = worker = None
        if not isinstance(container.queue, InProcessQueue):
            from supportlah.worker import make_worker

            worker = make_worker(settings, container=container, handle_signals=False, poll_delay=0.01)
            worker_task = asyncio.create_task(worker.main())
        try:
            async with TestClient(TestServer(create_app(container))) as client:
                yield container, client
        finally:
            if worker_task is not None:
                worker_task.cancel()
                await asyncio.gather(worker_task, return_exceptions=True)
                await worker.close()


async def test_a_retried_post_gets_the_recorded_reply_without_waiting(backend):
    async with answering_app(backend.settings(**MECHANICS)) as (container, client):
        body = {"visitor_id": "visitor-retry-01", "text": "What is the capital of Peru?", "client_id": "m-1"}
        first = await client.post("/api/chat", json=body)
        assert first.status == 200
        answered = await first.json()
        assert answered["reply"]["escalate"] is True and answered["reply"]["text"]

        # The reply event was published once, before the retry: only the store still has it. Without
        # looking there the retry would wait out the 60 s reply timeout and get a 202.
        async with asyncio.timeout(30):
            again = await client.post("/api/chat", json=body)
        assert again.status == 200
        assert await again.json() == answered
        assert await container.store.counts() == {"inbound": 1, "replies": 1, "outbound": 1}


async def test_a_retry_while_the_first_is_still_being_answered_waits_for_the_same_reply(backend):
    async with answering_app(backend.settings(**MECHANICS)) as (container, client):
        body = {"visitor_id": "visitor-retry-02", "text": "How much is a chemical wash for a condo?",
                "client_id": "m-2"}
        first, again = await asyncio.gather(client.post("/api/chat", json=body), client.post("/api/chat", json=body))
        assert first.status == again.status == 200
        first_body, again_body = await first.json(), await again.json()
        assert first_body == again_body and first_body["reply"]["text"]
        assert (await container.store.counts())["inbound"] == 1
