"""How the console plugs into the app and the CLI (``supportlah console …``).

:func:`attach_console` adds the routes to the aiohttp app over the container's pieces;
:func:`register_cli` / :func:`run_cli` handle ``supportlah console add-user|list-users|set-password-link``.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.settings import Settings
from rag.crawl import CrawlLimits
from escalation.tickets import TicketRepository
from supportlah.admin.knowledge import KnowledgeFiles
from supportlah.admin.wiring import upload_limits
from supportlah.console.accounts import AccountError, Accounts
from supportlah.console.analytics import AnalyticsPage, ConsoleAnalytics
from supportlah.console.auth import Gate
from supportlah.console.inbox import InboxReader
from supportlah.console.knowledge import KnowledgePages
from supportlah.console.models import Role
from supportlah.console.replies import StaffActions
from supportlah.console.setup import SetupPage
from supportlah.console.websites import WebsitePages, WebsiteSync, website_loop
from supportlah.console.web import ConsolePages

if TYPE_CHECKING:
    from supportlah.container import Container


def attach_console(app: web.Application, container: Container) -> None:
    settings = container.settings
    if not settings.console_enabled or container.privacy is None:
        return
    privacy = container.privacy
    sessions = privacy.sessions
    accounts = Accounts(sessions, session_hours=settings.console_session_hours)
    gate = Gate(accounts, privacy.flood_limiter, login_per_minute=settings.console_login_per_minute,
                trusted_proxy_hops=settings.trusted_proxy_hops,
                secure_cookie=(settings.public_url or "").startswith("https://"),
                session_hours=settings.console_session_hours)
    pages = ConsolePages(accounts=accounts, gate=gate, inbox=InboxReader(sessions, staff_chat_id=staff_chat_id(container)), actions=StaffActions(container.ingress, TicketRepository(sessions)),
                         tickets=TicketRepository(sessions), audit=privacy.audit, poll_seconds=settings.console_poll_seconds,
                         trusted_proxy_hops=settings.trusted_proxy_hops)
    app.add_routes(pages.routes())
    files = knowledge_files(container)
    app.add_routes(KnowledgePages(gate=gate, files=files, agent=container.agent, audit=privacy.audit).routes())
    app.add_routes(SetupPage(gate=gate, container=container).routes())
    analytics = ConsoleAnalytics(sessions, privacy.analytics, container.embedder)
    app.add_routes(AnalyticsPage(gate=gate, analytics=analytics).routes())
    websites = WebsiteSync(sessions, files, limits=crawl_limits(settings))
    app.add_routes(WebsitePages(gate=gate, sync=websites, audit=privacy.audit).routes())
    if container.redis is None:  # embedded: re-sync due websites here (production: the worker's cron)
        async def start(app: web.Application) -> None:
            app[_WEBSITE_TASK] = asyncio.create_task(
                website_loop(websites, settings.console_website_check_seconds), name="websites")

        async def stop(app: web.Application) -> None:
            task = app.get(_WEBSITE_TASK)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        app.on_startup.append(start)
        app.on_cleanup.insert(0, stop)


_WEBSITE_TASK = web.AppKey("console_website_task", asyncio.Task)


def staff_chat_id(container: Container) -> int | None:
    """The Telegram staff group, when there is one (its messages are not a customer's)."""
    escalation = container.escalation
    return escalation.config.staff_chat_id if escalation is not None else None


def knowledge_files(container: Container) -> KnowledgeFiles:
    settings = container.settings
    return KnowledgeFiles(container.catalog, container.ingestor, container.index,
                          settings.kb_upload_dir or settings.data_dir / "kb", upload_limits(settings))


def crawl_limits(settings: Settings) -> CrawlLimits:
    return CrawlLimits(max_pages=settings.crawl_max_pages, max_page_bytes=settings.admin_upload_max_bytes,
                       max_seconds=settings.crawl_max_seconds)


async def sync_due_websites(container: Container) -> int:
    """The production cron (``workers.arq_queue``): re-sync the websites whose schedule is due."""
    sync = WebsiteSync(container.privacy.sessions, knowledge_files(container), limits=crawl_limits(container.settings))
    return await sync.sync_due()


# ------------------------------------------------------------------ CLI
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    console = subparsers.add_parser("console", help="accounts for the web console (/console)")
    sub = console.add_subparsers(dest="console_command", required=True, metavar="ACTION")
    add = sub.add_parser("add-user", help="create an owner or staff account")
    add.add_argument("email")
    add.add_argument("--role", choices=[role.value for role in Role], default=Role.STAFF.value)
    add.add_argument("--name", help="the name customers and colleagues see (default: from the e-mail)")
    add.add_argument("--link", action="store_true",
                     help="print a one-time set-password link instead of asking for the password")
    link = sub.add_parser("set-password-link", help="print a one-time link to set a new password")
    link.add_argument("email")
    sub.add_parser("list-users", help="list console accounts")


async def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    from memory.db import create_engine, session_factory
    from supportlah.admin.audit import AuditLog
    from supportlah.container import prepare_database

    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url, pre_ping=settings.database_pre_ping)
    try:
        return await _run(settings, session_factory(engine), args, AuditLog(session_factory(engine)))
    finally:
        await engine.dispose()


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace,
               audit) -> int:  # noqa: ANN001  (AuditLog)
    from supportlah.cli import CliError

    accounts = Accounts(sessions)
    if args.console_command == "list-users":
        for user in await accounts.list():
            print(f"{user.email}\t{user.role}\t{user.name}")
        return 0
    if args.console_command == "set-password-link":
        try:
            token = await accounts.new_link(args.email)
        except AccountError as exc:
            raise CliError(str(exc)) from exc
        await audit.record("cli", "console.user.link", None)
        _print_link(settings, token)
        return 0
    password = None
    if not args.link:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password (at least 10 characters): ")
            if password != getpass.getpass("Password again: "):
                raise CliError("the two passwords differ")
    try:
        user, link_token = await accounts.add_user(args.email, Role(args.role), password=password, name=args.name)
    except AccountError as exc:
        raise CliError(str(exc)) from exc
    await audit.record("cli", "console.user.create", user.id, detail={"role": user.role.value})
    print(f"created {user.role.value} account {user.email}")
    if link_token is not None:
        _print_link(settings, link_token)
    return 0


def _print_link(settings: Settings, token: str) -> None:
    base = (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")
    print("send this one-time link to set the password (valid 48 hours):")
    print(f"{base}/console/set-password?token={token}")
