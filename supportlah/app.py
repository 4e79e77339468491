"""The aiohttp application: web chat, webhooks and health endpoints over one container."""
from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from sqlalchemy import text

from channels.web.handlers import WebChat
from config.languages import LANGUAGES, find_language
from supportlah.admin.wiring import attach_admin
from supportlah.console.wiring import attach_console
from supportlah.container import Container
from supportlah.escalation_wiring import escalation_routes
from supportlah.schedule import start_embedded
from supportlah.web_intro import KnowledgeIntro, WebVisitorData
from workers.arq_queue import worker_alive
from workers.ingress import requeue_unanswered

log = logging.getLogger(__name__)

CONTAINER = web.AppKey("container", Container)


def create_app(container: Container) -> web.Application:
    settings = container.settings
    app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[_security_headers])
    app[CONTAINER] = container
    languages = _served_languages(settings.business_languages)
    webchat = WebChat(
        container.ingress,
        container.store,
        container.hub,
        business_name=settings.business_name,
        max_message_chars=settings.max_message_chars,
        allowed_origins=settings.web_allowed_origins,
        intro=KnowledgeIntro(container.catalog.headings, business_name=settings.business_name,
                             language=languages[0].code, greeting=settings.web_greeting,
                             configured=settings.web_example_questions),
        languages=languages,
        visitor_data=WebVisitorData(container.privacy.personal_data) if container.privacy else None,
    )
    app.add_routes(webchat.routes())
    app.on_shutdown.append(webchat.close_sockets)  # open pages would otherwise hold shutdown for a minute
    if container.twilio is not None:
        app.add_routes(container.twilio.webhooks(container.ingress, container.deliveries).routes())
    if container.telegram is not None and container.telegram.mode == "webhook":
        app.add_routes(container.telegram.webhook(container.ingress).routes())
    app.add_routes(escalation_routes(container.escalation))  # signed links for staff attachments
    attach_admin(app, container)  # admin/PDPA: admin API, /metrics, rate limits
    attach_console(app, container)  # the owner's console at /console
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    # Each context starts in this order and is cleaned up in the reverse one: the container closes
    # last, after the loops and the poller that use it have stopped.
    app.cleanup_ctx.append(_container_lifetime)
    app.cleanup_ctx.append(_scheduled_jobs)
    app.cleanup_ctx.append(_telegram_polling)
    return app


def _served_languages(names: list[str]):  # noqa: ANN202 - list[Language]
    """SUPPORTLAH_BUSINESS_LANGUAGES that the chat can offer (others are for the LLM's prompt only)."""
    served = [found for found in map(find_language, names) if found is not None]
    return served or list(LANGUAGES)


@web.middleware
async def _security_headers(request: web.Request, handler):  # noqa: ANN001
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
        )
    return response


async def healthz(request: web.Request) -> web.Response:
    """Liveness only: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every dependency this process needs answers."""
    container = request.app[CONTAINER]
    checks: dict[str, str] = {}
    checks["database"] = await _check(_database_ok(container))
    checks["index"] = await _check(container.index.healthy())
    if container.settings.is_production_queue:
        checks["redis"] = await _check(container.redis.ping())
        checks["worker"] = await _check(_worker_reported(container))
    ok = all(value == "ok" for value in checks.values())
    # Providers are reported, not required: webhooks are still accepted and sends retry while one is down.
    providers: dict[str, str] = {}
    if container.twilio is not None:
        providers["twilio"] = await _check(container.twilio.sender.reachable())
    if container.telegram is not None:
        providers["telegram"] = await _check(container.telegram.reachable())
    body = {"status": "ok" if ok else "unavailable", "checks": checks, "providers": providers}
    return web.json_response(body, status=200 if ok else 503)


async def _database_ok(container: Container) -> bool:
    async with container.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return True


async def _worker_reported(container: Container) -> bool:
    return await worker_alive(container.redis, container.settings)


async def _check(probe) -> str:  # noqa: ANN001
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(probe, timeout=2.0)
    except Exception as exc:  # a readiness probe reports, it does not crash
        return f"error: {type(exc).__name__}: {exc}"[:200]
    if result is False:
        return "error: not ready"
    log.debug("readiness probe ok", extra={"seconds": round(time.monotonic() - started, 4)})
    return "ok"


async def _container_lifetime(app: web.Application):  # noqa: ANN201 - an async generator
    """The app owns the container it was given: closed when the app is cleaned up."""
    yield
    await app[CONTAINER].close()


async def _scheduled_jobs(app: web.Application):  # noqa: ANN201 - an async generator
    """Embedded mode: re-enqueue what a previous run accepted but never answered, then run the
    scheduled jobs (recovery, SLA reminders, retention, website re-sync) that a production worker
    runs (``supportlah.worker``)."""
    container = app[CONTAINER]
    if container.settings.is_production_queue:
        yield
        return
    await requeue_unanswered(container.store, container.queue, older_than=None)
    tasks = start_embedded(container)
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _telegram_polling(app: web.Application):  # noqa: ANN201 - an async generator
    """Polling mode (no public URL): long-poll Telegram and feed the same ingress as the webhook."""
    container = app[CONTAINER]
    if container.telegram is None or container.telegram.mode != "polling":
        yield
        return
    poller = container.telegram.poller(container.ingress)
    task = asyncio.create_task(poller.run(), name="telegram-poller")
    yield
    poller.stop()
    await asyncio.gather(task, return_exceptions=True)
