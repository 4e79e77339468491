"""The owner's setup page: a checklist from live checks, and the effective settings (secrets masked).

Each check reads what actually happened (the last inbound message per channel, the last
failed send, the last answer's backend, fallbacks since start) or asks the provider
(``getMe`` for Telegram, the account for Twilio) with a short timeout; nothing costs money.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import func, select

from channels.messages import Channel
from memory.models import InboundMessageRow, OutboundPart, PartState, ReplyRow
from supportlah.console.auth import Gate
from supportlah.console.html import Markup, join, render, when
from supportlah.console.models import ConsoleUser
from supportlah.console.web import signed_in_page

if TYPE_CHECKING:
    from supportlah.container import Container

PROBE_SECONDS = 3.0
TWILIO_WEBHOOK = "/webhooks/twilio/whatsapp"  # channels.twilio.inbound.WHATSAPP_PATH
TELEGRAM_WEBHOOK = "/webhooks/telegram"


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # ok | warn | off
    detail: Markup | str


class SetupPage:
    def __init__(self, *, gate: Gate, container: Container) -> None:
        self._gate = gate
        self._container = container

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/console/setup", self._gate.guard(self.setup_page, owner=True))]

    async def setup_page(self, request: web.Request) -> web.Response:
        checks = await self.checks()
        items = join(render('<li class="check-$state"><span class="badge">$badge</span> <strong>$name</strong>: '
                            '$detail</li>', state=check.state, name=check.name, detail=check.detail,
                            badge={"ok": "✓ working", "warn": "! needs attention", "off": "– not set up"}[check.state])
                     for check in checks)
        settings = join(render('<tr><th scope="row">$key</th><td>$value</td></tr>', key=key,
                               value="" if value is None else value)
                        for key, value in self._container.settings.masked().items())
        body = render('<h1>Setup</h1><section class="card" aria-labelledby="checks-h"><h2 id="checks-h">Checklist</h2>'
                      '<ul class="checklist">$items</ul></section>'
                      '<section class="card" aria-labelledby="settings-h"><h2 id="settings-h">Effective settings</h2>'
                      '<p class="muted">Secrets are masked. Change them in the environment or .env and restart.</p>'
                      '<table class="settings"><tbody>$settings</tbody></table></section>',
                      items=items, settings=settings)
        return signed_in_page(request, "Setup", body, active="setup")

    async def checks(self) -> list[Check]:
        container, settings = self._container, self._container.settings
        facts = await self._facts()
        public = settings.public_url.rstrip("/") if settings.public_url else None
        checks = [self._llm(facts), self._reranker()]
        if container.twilio is None:
            checks.append(Check("WhatsApp (Twilio)", "off", "set SUPPORTLAH_TWILIO_ACCOUNT_SID, "
                                "SUPPORTLAH_TWILIO_AUTH_TOKEN and SUPPORTLAH_TWILIO_WHATSAPP_FROM"))
        else:
            reachable = await _probe(container.twilio.sender.reachable())
            url = f"{public}{TWILIO_WEBHOOK}" if public else "set SUPPORTLAH_PUBLIC_URL first"
            error = facts["whatsapp_error"]
            detail = render('webhook URL to paste in Twilio: <code>$url</code>; API $api; last inbound $last; '
                            'last error $error', url=url, api=reachable, last=when(facts["whatsapp_last"]),
                            error=error or "none")
            checks.append(Check("WhatsApp (Twilio)", "ok" if reachable == "reachable" and public and not error
                                else "warn", detail))
        if container.telegram is None:
            checks.append(Check("Telegram", "off", "set SUPPORTLAH_TELEGRAM_BOT_TOKEN"))
        else:
            reachable = await _probe(container.telegram.reachable())
            how = (f"webhook at {public}{TELEGRAM_WEBHOOK}" if container.telegram.mode == "webhook" and public
                   else container.telegram.mode)
            checks.append(Check("Telegram", "ok" if reachable == "reachable" else "warn",
                                render("$how; Bot API $api; last update $last", how=how, api=reachable,
                                       last=when(facts["telegram_last"]))))
        staff_group = container.escalation is not None and container.escalation.staff_sender is not None
        checks.append(Check("Staff group", "ok" if staff_group else "off",
                            f"Telegram group {settings.staff_chat_id}" if staff_group else
                            "none: hand-offs are answered here in the console"))
        checks.append(Check("Console accounts", "ok" if facts["accounts"] else "warn",
                            f"{facts['accounts']} account(s)" if facts["accounts"] else
                            "none: add one with `supportlah console add-user EMAIL --role owner`"))
        checks.append(Check("Public URL", "ok" if public and public.startswith("https://") else "warn",
                            public or "not set: webhooks and WhatsApp attachments need SUPPORTLAH_PUBLIC_URL"))
        checks.append(Check("Retention", "ok", f"messages and attachments are deleted after "
                                               f"{settings.retention_days} days"))
        return checks

    def _llm(self, facts: dict) -> Check:
        settings, fallbacks = self._container.settings, self._container.fallbacks
        fell_back = fallbacks.count("answerer") if fallbacks is not None else 0
        last = facts["last_answerer"] or "no answer yet"
        if not settings.llm_base_url:
            return Check("Answers (LLM)", "off", render("no LLM configured: answers are extracted from your documents "
                                                        "(last answer by $last)", last=last))
        return Check("Answers (LLM)", "warn" if fell_back else "ok",
                     render("$model at $url; last answer by $last; $n fallbacks since start", model=settings.llm_model,
                            url=settings.llm_base_url, last=last, n=fell_back))

    def _reranker(self) -> Check:
        settings, fallbacks = self._container.settings, self._container.fallbacks
        fell_back = fallbacks.count("reranker") if fallbacks is not None else 0
        if settings.cohere_api_key is None:
            return Check("Reranker", "ok", "local reranker (no Cohere key set)")
        return Check("Reranker", "warn" if fell_back else "ok", f"Cohere; {fell_back} fallbacks since start")

    async def _facts(self) -> dict:
        async with self._container.privacy.sessions() as session:
            last = {}
            for channel in (Channel.WHATSAPP, Channel.TELEGRAM):
                last[channel] = await session.scalar(select(func.max(InboundMessageRow.received_at))
                                                     .where(InboundMessageRow.channel == channel.value))
            failed = (await session.execute(
                select(OutboundPart.error_code, OutboundPart.last_error, OutboundPart.updated_at)
                .where(OutboundPart.channel == Channel.WHATSAPP.value, OutboundPart.state == PartState.FAILED)
                .order_by(OutboundPart.updated_at.desc()).limit(1))).first()
            backend = await session.scalar(select(ReplyRow.backend).order_by(ReplyRow.created_at.desc()).limit(1))
            accounts = await session.scalar(select(func.count()).select_from(ConsoleUser)) or 0
        error = None
        if failed is not None:
            error = f"{failed.error_code or ''} {(failed.last_error or '')[:160]} ({_ago(failed.updated_at)})".strip()
        return {"whatsapp_last": last[Channel.WHATSAPP], "telegram_last": last[Channel.TELEGRAM],
                "whatsapp_error": error, "last_answerer": (backend or {}).get("answerer"), "accounts": accounts}


async def _probe(check) -> str:  # noqa: ANN001
    try:
        ok = await asyncio.wait_for(check, PROBE_SECONDS)
    except Exception as exc:  # reported on the page, not raised: the page shows what is wrong
        return f"unreachable ({type(exc).__name__})"
    return "reachable" if ok is not False else "not reachable"


def _ago(moment: datetime) -> str:
    return moment.strftime("%d %b %H:%M UTC")
