"""How the console plugs into the app and the CLI (``supportlah console …``).

:func:`attach_console` adds the routes to the aiohttp app over the container's pieces;
:func:`register_cli` / :func:`run_cli` handle ``supportlah console add-user|list-users|set-password-link``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from config.settings import Settings
from rag.crawl import CrawlLimits
from escalation.tickets import TicketRepository
from supportlah.admin.knowledge import KnowledgeFiles
from supportlah.admin.wiring import upload_limits
from supportlah.console.accounts import Accounts
from supportlah.console.analytics import AnalyticsPage, ConsoleAnalytics
from supportlah.console.auth import Gate
from supportlah.console.inbox import InboxReader
from supportlah.console.knowledge import KnowledgePages
from supportlah.console.replies import StaffActions
from supportlah.console.setup import SetupPage
from supportlah.console.websites import WebsitePages
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
    app.add_routes(WebsitePages(gate=gate, sync=container.websites, audit=privacy.audit).routes())


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
    """The scheduled job (``supportlah.schedule``): re-sync the websites whose schedule is due."""
    if container.websites is None:
        return 0
    return await container.websites.sync_due()
