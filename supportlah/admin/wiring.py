"""How the privacy, admin and hardening pieces plug into the app, the worker and the CLI.

The composition root calls :func:`build_privacy` once and keeps the result as
``container.privacy``; the app adds :func:`admin_middlewares` and :func:`admin_routes`;
the scheduler (``supportlah.schedule``) runs :func:`purge_expired`; ``supportlah admin …`` lives
in ``supportlah.admin.cli``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import utcnow
from config.settings import Settings
from memory.pdpa import MediaFiles, PersonalData
from supportlah.admin.analytics import Analytics
from supportlah.admin.audit import AuditLog, StaffAuditHook
from supportlah.admin.consent import AnswerCallback, ConsentConfig, PrivacyHook
from supportlah.admin.keys import ApiKeys
from supportlah.admin.limits import (
    ContactFloodHook,
    FloodLimiter,
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
    limiter: FloodLimiter,
    detect: Callable[[str], str] | None = None,
    answer_callback: AnswerCallback | None = None,
) -> Privacy:
    """Everything for PDPA and hardening. ``locks`` must be the processor's own conversation locks;
    ``limiter``: the mode's contact rate limiter (``supportlah.backends``)."""
    personal_data = PersonalData(sessions, locks, holders=[MediaFiles(media_dir(settings))],
                                 lock_wait_seconds=settings.erasure_lock_wait_seconds)
    _add_feature_holders(sessions, personal_data)
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
    """The retention job (``supportlah.schedule``, in both modes): purge what is
    older than ``retention_days`` and finish customer erasures a dead worker left confirmed."""
    privacy = _privacy(container)
    erased = await privacy.personal_data.run_confirmed_erasures()
    report = await privacy.purger.purge(utcnow() - timedelta(days=container.settings.retention_days))
    report.add("erasures_completed", erased)
    return report


# ------------------------------------------------------------------ app
def attach_admin(app: web.Application, container: Container) -> None:
    """Everything the HTTP app needs from here: middlewares and the admin routes."""
    app.middlewares.extend(admin_middlewares(container))
    app.add_routes(admin_routes(container))
