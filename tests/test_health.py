"""/healthz is liveness; /readyz checks what this process depends on and reports the providers."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from supportlah.app import create_app
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI
from tests.fakes.twilio_api import FakeTwilioApi
from tests.harness import running_container


async def test_readyz_checks_dependencies_in_each_mode(backend):
    async with running_container(backend.settings(worker_health_seconds=5), start_queue=False) as container:
        async with TestClient(TestServer(create_app(container))) as client:
            assert (await client.get("/healthz")).status == 200
            response = await client.get("/readyz")
            body = await response.json()
            if backend.name == "embedded":
                assert response.status == 200 and body["checks"] == {"database": "ok", "index": "ok"}
            else:
                # No worker has reported in yet: not ready, and it says why.
                assert response.status == 503 and body["checks"]["worker"].startswith("error")
                assert body["checks"]["redis"] == "ok" and body["checks"]["database"] == "ok"
                from supportlah.worker import make_worker

                worker = make_worker(container.settings, container=container, handle_signals=False, poll_delay=0.05)
                running = asyncio.create_task(worker.main())
                try:
                    for _ in range(100):  # the worker writes its health-check key as it starts polling
                        body = await (await client.get("/readyz")).json()
                        if body["checks"]["worker"] == "ok":
                            break
                        await asyncio.sleep(0.05)
                    assert body["checks"]["worker"] == "ok" and body["status"] == "ok", body
                finally:
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)
                    await worker.close()
                body = await (await client.get("/readyz")).json()
                assert body["checks"]["worker"].startswith("error"), "a stopped worker is not ready"


async def test_readyz_reports_unreachable_providers_without_refusing_webhooks(backend):
    twilio = FakeTwilioApi("AC" + "9" * 32, "health-token")
    await twilio.start()
    async with FakeTelegramAPI() as telegram:
        settings = backend.settings(
            public_url="https://support.example.com", twilio_account_sid=twilio.account_sid,
            twilio_auth_token="health-token", twilio_whatsapp_from="whatsapp:+6560003333",
            twilio_api_base_url=twilio.base_url, telegram_bot_token=TEST_TOKEN,
            telegram_webhook_secret="secret-1234", telegram_api_base_url=telegram.url)
        async with running_container(settings, start_queue=False) as container:
            async with TestClient(TestServer(create_app(container))) as client:
                body = await (await client.get("/readyz")).json()
                assert body["providers"] == {"twilio": "ok", "telegram": "ok"}
                await twilio.stop()  # Twilio goes away
                body = await (await client.get("/readyz")).json()
                assert body["providers"]["twilio"].startswith("error") and body["providers"]["telegram"] == "ok"
                response = await client.post("/webhooks/twilio/whatsapp", data={})
                assert response.status == 403  # still serving webhooks (and still checking signatures)
    assert twilio.account_fetches == 1
