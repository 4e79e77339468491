"""How the privacy, admin and hardening pieces plug into the app, the worker and the CLI.

The composition root calls :func:`build_privacy` once and keeps the result as
``container.privacy``; the app adds :func:`admin_middlewares` and :func:`admin_routes`;
the scheduler runs :func:`purge_expired`; the CLI delegates ``supportlah admin …`` to
:func:`register_cli` / :func:`run_cli`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import utcnow
from config.settings import Settings
from memory.pdpa import MediaFiles, PersonalData
from supportlah.admin.analytics import Analytics
from supportlah.admin.audit import AuditLog, StaffAuditHook
from supportlah.admin.consent import AnswerCallback, ConsentConfig, PrivacyHook
from supportlah.admin.keys import SCOPES, ApiKeys, UnknownScope, parse_scopes
from supportlah.admin.limits import (
    ContactFloodHook,
    FloodLimiter,
    LocalFloodLimiter,
    RedisFloodLimiter,
    ip_rate_limit_middleware,
    json_api_errors,
)
from supportlah.admin.metrics import HttpMetrics
from supportlah.admin.retention import PurgeReport, RetentionPurger
from supportlah.admin.uploads import UploadLimits
from workers.hooks import MessageHook
from workers.queue import ConversationLocks

if TYPE_CHECKING:
    from supportlah.container import Container

log = logging.getLogger(__name__)


@dataclass
class Privacy:
    """The privacy and hardening objects one process shares between pipeline, API and cron."""

    sessions: async_sessionmaker[AsyncSession]
    personal_data: PersonalData
    purger: RetentionPurger
    audit: AuditLog
    keys: ApiKeys
    analytics: Analytics
    flood_limiter: FloodLimiter
    http_metrics: HttpMetrics
    hooks: list[MessageHook]

    async def close(self) -> None:
        await self.personal_data.close()


def media_dir(settings: Settings):  # noqa: ANN201
    return settings.twilio_media_dir or settings.data_dir / "media"


def build_privacy(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    locks: ConversationLocks,
    redis: Redis | None,
    detect: Callable[[str], str] | None = None,
    answer_callback: AnswerCallback | None = None,
) -> Privacy:
    """Everything for PDPA and hardening. ``locks`` must be the processor's own conversation locks."""
    personal_data = PersonalData(sessions, locks, holders=[MediaFiles(media_dir(settings))],
                                 lock_wait_seconds=settings.erasure_lock_wait_seconds)
    _add_feature_holders(sessions, personal_data)
    limiter: FloodLimiter = (RedisFloodLimiter(redis, settings.redis_prefix) if redis is not None
                             else LocalFloodLimiter())
    http_metrics = HttpMetrics()
    audit = AuditLog(sessions)
    consent = ConsentConfig(mode=settings.pdpa_consent_mode, notice_version=settings.pdpa_notice_version,
                            business_name=settings.business_name, retention_days=settings.retention_days,
                            policy_url=settings.pdpa_policy_url, notice_texts=dict(settings.pdpa_notice_texts))
    hooks: list[MessageHook] = [
        ContactFloodHook(limiter, per_minute=settings.rate_limit_contact_per_minute,
                             max_message_chars=settings.max_message_chars, on_limited=http_metrics.note_limited),
        PrivacyHook(sessions, personal_data, consent, detect=detect, answer_callback=answer_callback),
        StaffAuditHook(audit),
    ]
    purger = RetentionPurger(sessions, [MediaFiles(media_dir(settings))], personal_data=personal_data)
    return Privacy(sessions=sessions, personal_data=personal_data, purger=purger,
                   audit=audit, keys=ApiKeys(sessions),
                   analytics=Analytics(sessions), flood_limiter=limiter, http_metrics=http_metrics, hooks=hooks)


def _add_feature_holders(sessions: async_sessionmaker[AsyncSession], personal_data: PersonalData) -> None:
    """Tickets (escalation) are exported and anonymized with the rest of a customer's data."""
    from supportlah.admin.tickets_api import TicketsPersonalData

    personal_data.add_holder(TicketsPersonalData(sessions))


# ------------------------------------------------------------------ HTTP
def _privacy(container: Container) -> Privacy:
    privacy = getattr(container, "privacy", None)
    if privacy is None:
        raise RuntimeError("container.privacy is missing: build it with supportlah.admin.wiring.build_privacy")
    return privacy


def admin_middlewares(container: Container) -> list:
    """Outermost first: request metrics (they count refusals too), the per-address limit, JSON errors."""
    privacy, settings = _privacy(container), container.settings
    return [privacy.http_metrics.middleware(),
            ip_rate_limit_middleware(privacy.flood_limiter, settings.rate_limit_ip_per_minute,
                                     settings.trusted_proxy_hops, on_limited=privacy.http_metrics.note_limited),
            json_api_errors]


def admin_routes(container: Container) -> list[web.RouteDef]:
    from escalation.tickets import TicketRepository
    from supportlah.admin.api import AdminApi
    from supportlah.admin.tickets_api import EscalationTickets
    from supportlah.console.replies import ApiReplies, StaffActions

    privacy, settings = _privacy(container), container.settings
    sessions = privacy.sessions
    api = AdminApi(
        keys=privacy.keys, audit=privacy.audit, catalog=container.catalog, ingestor=container.ingestor,
        retriever=container.retriever, index=container.index, store=container.store, sessions=sessions,
        personal_data=privacy.personal_data, analytics=privacy.analytics, http_metrics=privacy.http_metrics,
        upload_dir=settings.kb_upload_dir or settings.data_dir / "kb",
        upload_limits=upload_limits(settings),
        trusted_proxy_hops=settings.trusted_proxy_hops, metrics_require_key=settings.metrics_require_key,
        tickets=EscalationTickets(sessions, TicketRepository(sessions)),
        replies=ApiReplies(StaffActions(container.ingress, TicketRepository(sessions))),
    )
    return api.routes()


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(settings.admin_upload_max_bytes, settings.upload_max_pdf_pages,
                        settings.upload_max_unpacked_bytes, settings.upload_max_compression_ratio)


# ------------------------------------------------------------------ retention
async def purge_expired(container: Container) -> PurgeReport:
    """The retention job (arq cron in production, :func:`retention_loop` in embedded mode): purge what is
    older than ``retention_days`` and finish customer erasures a dead worker left confirmed."""
    privacy = _privacy(container)
    erased = await privacy.personal_data.run_confirmed_erasures()
    report = await privacy.purger.purge(utcnow() - timedelta(days=container.settings.retention_days))
    report.add("erasures_completed", erased)
    return report


async def retention_loop(container: Container) -> None:
    """Embedded mode: purge at start-up and then every ``retention_interval_seconds``."""
    while True:
        try:
            await purge_expired(container)
        except Exception:
            log.exception("retention purge failed; retrying next period")
        await asyncio.sleep(container.settings.retention_interval_seconds)


# ------------------------------------------------------------------ CLI
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser("admin", help="API keys, audit log and retention")
    sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    create = sub.add_parser("create-key", parents=[json_flag],
                            help="create an admin API key (printed once, on the last line)")
    create.add_argument("--name", default="admin", help="who or what the key is for")
    create.add_argument("--scopes", nargs="+", default=["all"],
                        help=f"scopes (default: all): {' '.join(SCOPES)}")
    revoke = sub.add_parser("revoke-key", parents=[json_flag], help="revoke a key by its id or prefix")
    revoke.add_argument("key", help="key id or prefix, as shown by list-keys")
    sub.add_parser("list-keys", parents=[json_flag], help="list API keys (prefixes only)")
    audit = sub.add_parser("audit", parents=[json_flag], help="show recent audit log entries")
    audit.add_argument("--limit", type=int, default=50)
    sub.add_parser("purge", parents=[json_flag], help="run the retention purge now")


async def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    from memory.db import create_engine, session_factory
    from supportlah.migrate import prepare_database

    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url, pre_ping=settings.database_pre_ping)
    sessions = session_factory(engine)
    try:
        return await _run(settings, sessions, args)
    finally:
        await engine.dispose()


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace) -> int:
    from supportlah.cli import CliError, print_json

    keys, audit = ApiKeys(sessions), AuditLog(sessions)
    command = args.admin_command
    if command == "create-key":
        try:
            scopes = parse_scopes(args.scopes)
        except UnknownScope as exc:
            raise CliError(str(exc)) from exc
        new = await keys.create(args.name, scopes)
        await audit.record("cli", "key.create", new.info.id, detail={"prefix": new.info.prefix,
                                                                      "scopes": sorted(scopes)})
        if args.json:
            print_json({**_key_json(new.info), "token": new.token})
            return 0
        print(f"created key {new.info.prefix}… (id {new.info.id}) for {new.info.name!r}")
        print(f"scopes: {' '.join(sorted(scopes))}")
        print("store it now: it is shown only this once")
        print(new.token)
        return 0
    if command == "revoke-key":
        info = await keys.revoke(args.key)
        if info is None:
            raise CliError(f"no key with id or prefix {args.key!r} (see `supportlah admin list-keys`)")
        await audit.record("cli", "key.revoke", info.id, detail={"prefix": info.prefix})
        if args.json:
            print_json(_key_json(info))
            return 0
        print(f"revoked {info.prefix}… ({info.name})")
        return 0
    if command == "list-keys":
        if args.json:
            print_json([_key_json(info) for info in await keys.list()])
            return 0
        for info in await keys.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
            print(f"{info.prefix}…\t{info.id}\t{info.name}\t{state}\tlast used {used}\t{' '.join(sorted(info.scopes))}")
        return 0
    if command == "audit":
        if args.json:
            print_json([{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "target": e.target,
                         "detail": e.detail} for e in reversed(await audit.recent(args.limit))])
            return 0
        for entry in reversed(await audit.recent(args.limit)):
            print(f"{entry.at:%Y-%m-%d %H:%M:%S}\t{entry.actor}\t{entry.action}\t{entry.target or '-'}\t"
                  f"{json.dumps(entry.detail, ensure_ascii=False)}")
        return 0
    if command == "purge":
        from supportlah.container import build

        container = await build(settings, start_queue=False)
        try:
            report = await purge_expired(container)
        finally:
            await container.close()
        await audit.record("cli", "retention.purge", None, detail=report.counts)
        if args.json:
            print_json(report.counts)
        else:
            print("purged: " + ", ".join(f"{name} {count}" for name, count in report.counts.items()))
        return 0
    raise CliError(f"unknown admin action {command!r}")


def _key_json(info) -> dict:  # noqa: ANN001 - KeyInfo
    return {"id": info.id, "name": info.name, "prefix": info.prefix, "scopes": sorted(info.scopes),
            "created_at": info.created_at.isoformat(), "revoked_at": _iso(info.revoked_at),
            "last_used_at": _iso(info.last_used_at)}


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value is not None else None



# ------------------------------------------------------------------ app
_RETENTION_TASK = web.AppKey("retention_task", asyncio.Task)


def attach_admin(app: web.Application, container: Container) -> None:
    """Everything the HTTP app needs: middlewares, admin routes and (embedded mode) the retention loop.
    Call it before the app's own cleanup is registered, so the loop stops before the container closes."""
    app.middlewares.extend(admin_middlewares(container))
    app.add_routes(admin_routes(container))
    if container.redis is not None:
        return  # production: the arq worker's cron runs purge_expired

    async def start(app: web.Application) -> None:
        app[_RETENTION_TASK] = asyncio.create_task(retention_loop(container), name="retention")

    async def stop(app: web.Application) -> None:
        task = app.get(_RETENTION_TASK)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
