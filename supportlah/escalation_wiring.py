"""Wiring for the staff hand-off (escalation/): what the composition root, the app, the CLI
and the workers call. Everything is built from settings here and handed over explicitly.

* :func:`build_escalation` — the hook (register it before the media and command hooks), the
  ``Channel.STAFF`` sender and the Telegram relay sender (both added to the outbound router).
* :func:`escalation_routes` — ``GET /media/staff/<token>`` (staff attachments for WhatsApp/web).
* :func:`sla_reminders` / :func:`sla_reminders_job` — the periodic SLA check (embedded loop, arq cron).
* :func:`sensitive_terms` — the agent's sensitive-topic list plus ``SUPPORTLAH_ESCALATION_SENSITIVE_TERMS``.
* ``supportlah.tickets_cli.register`` / ``supportlah.tickets_cli.cmd_tickets`` — ``supportlah tickets list|show``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from agent.intents import DEFAULT_SENSITIVE_TERMS
from config.settings import Settings
from escalation.config import EscalationConfig
from escalation.delivery_notice import StaffDeliveryNotice
from escalation.desk import StaffDesk
from escalation.drafts import Drafter
from escalation.hook import EscalationHook, OtherDesk
from config.hours import BusinessHours
from escalation.parts import PartFactory
from escalation.reminders import SlaReminders
from escalation.tickets import TicketRepository
from memory.store import MessageStore
from workers.outbound import OutboundRouter

if TYPE_CHECKING:  # the staff group's pieces use the Telegram SDK: imported only when Telegram is on
    from aiohttp import web

    from channels.telegram.channel import TelegramChannel
    from channels.telegram.ratelimit import RateLimiter
    from escalation.media import StaffMediaHandler
    from escalation.staff_sender import MediaSource, StaffSender
    from escalation.topics import TopicKeeper

log = logging.getLogger(__name__)


@dataclass
class Escalation:
    config: EscalationConfig
    tickets: TicketRepository
    hours: BusinessHours
    hook: EscalationHook
    reminders: SlaReminders
    staff_sender: StaffSender | None = None  # None: no staff group (no Telegram or no SUPPORTLAH_STAFF_CHAT_ID)
    topics: TopicKeeper | None = None
    media: StaffMediaHandler | None = None
    delivery_notice: StaffDeliveryNotice | None = None  # "not delivered" posts after a provider's report


def build_escalation(settings: Settings, *, sessions: async_sessionmaker, store: MessageStore,
                     outbound: OutboundRouter, telegram: TelegramChannel | None, redis: Redis | None,
                     drafter: Drafter | None = None, media_fetcher: MediaSource | None = None,
                     other_desk: OtherDesk | None = None) -> Escalation:
    """Raises :class:`config.hours.BusinessHoursError` (a ValueError) for unreadable business hours."""
    hours = BusinessHours.parse(settings.business_hours, holidays=settings.public_holidays,
                                time_zone=settings.business_timezone)
    staff_group = telegram is not None and settings.staff_chat_id is not None
    config = EscalationConfig.from_settings(settings, staff_group=staff_group)
    if telegram is not None and settings.staff_chat_id is None:
        log.warning("SUPPORTLAH_STAFF_CHAT_ID is not set: hand-offs are recorded as tickets but nobody is told")
    tickets = TicketRepository(sessions)
    parts = PartFactory(config.staff_chat_id, outbound.split)
    staff_sender = topics = media = links = None
    if telegram is not None:
        from channels.telegram.outbound import split_for_telegram
        from channels.telegram.staff_chat import StaffChat
        from escalation.media import MediaLinks, StaffMediaHandler, signing_key
        from escalation.staff_sender import StaffSender
        from escalation.telegram_relay import TelegramRelaySender
        from escalation.topics import TopicKeeper

        limiter = _limiter(settings, redis)
        outbound.add(TelegramRelaySender(telegram.sender, telegram.bot, limiter))  # same splitter as before
        links = MediaLinks(signing_key(settings.telegram_bot_token.get_secret_value()), settings.public_url)
        media = StaffMediaHandler(telegram.bot, links)
        if config.staff_chat_id is not None:
            staff_chat = telegram.staff_chat or StaffChat(config.staff_chat_id)
            staff_chat.on_move(tickets.move_chat)  # topics and posts follow the group to its new id
            topics = TopicKeeper(telegram.bot, staff_chat, tickets, use_topics=config.use_topics)
            staff_sender = StaffSender(telegram.bot, limiter, topics, tickets, store, media=media_fetcher)
            outbound.add(staff_sender, split_for_telegram)
    desk = StaffDesk(config, tickets, parts, hours, media_links=links,
                     answer_callback=telegram.sender.answer_callback if telegram is not None else None,
                     staff_chat=topics.staff_chat if topics is not None else None)
    hook = EscalationHook(config, tickets, store, parts, hours, desk, drafter=drafter, other_desk=other_desk)
    reminders = SlaReminders(config, tickets, staff_sender, hours)
    return Escalation(config=config, tickets=tickets, hours=hours, hook=hook, reminders=reminders,
                      staff_sender=staff_sender, topics=topics, media=media,
                      delivery_notice=StaffDeliveryNotice(tickets, parts, store))


def escalation_routes(escalation: Escalation | None) -> list[web.RouteDef]:
    """Routes to add to the app (none without Telegram)."""
    if escalation is None or escalation.media is None:
        return []
    return escalation.media.routes()


async def sla_reminders(container) -> int:  # noqa: ANN001  (supportlah.container.Container)
    """One SLA pass over a container: schedule it every ``escalation_reminder_interval_seconds``."""
    escalation = getattr(container, "escalation", None)
    if escalation is None:
        return 0
    return await escalation.reminders.run_once()


async def sla_reminders_job(ctx: dict) -> int:
    """The arq cron function (``ctx["container"]`` is set by the worker's startup)."""
    return await sla_reminders(ctx["container"])


def sensitive_terms(settings: Settings) -> tuple[str, ...]:
    """For ``IntentDetector(sensitive_terms=...)``: the built-in list plus the business's own words."""
    return (*DEFAULT_SENSITIVE_TERMS, *settings.escalation_sensitive_terms)


def _limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    """Staff-group and relay sends obey Telegram's limits; with Redis the buckets are the ones
    ``TelegramSender`` uses (same keys), so all processes and both senders share them."""
    from channels.telegram.client import limits_from_settings
    from channels.telegram.ratelimit import LocalRateLimiter, RedisRateLimiter

    limits = limits_from_settings(settings)
    return RedisRateLimiter(redis, settings.redis_prefix, limits) if redis is not None else LocalRateLimiter(limits)
