"""Websites in the knowledge base: add a start URL, crawl it, re-sync it on the owner's schedule.

Each crawled page becomes a document (``site-<id>-<page>.html``, category ``website:<id>``)
written through :class:`~supportlah.admin.knowledge.KnowledgeFiles`, so it is checked and
indexed like an upload. A re-sync writes every page again: ingestion sees an unchanged
file (same sha256) and skips it, so only pages that changed are chunked and embedded;
pages gone from the site are removed. Due sites are synced by the app's loop (embedded)
or the worker's cron (production).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from datetime import timedelta
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import new_id, utcnow
from rag.crawl import CrawlError, CrawlLimits, SiteCrawler, origin_of
from supportlah.admin.audit import AuditLog
from supportlah.admin.knowledge import KnowledgeError, KnowledgeFiles
from supportlah.console.auth import SIGNED_IN, Gate
from supportlah.console.html import Markup, button_form, hidden, join, render, when
from supportlah.console.models import Website
from supportlah.console.web import flash, redirect, signed_in_page

log = logging.getLogger(__name__)

SCHEDULES = (("Every 6 hours", 6), ("Daily", 24), ("Weekly", 24 * 7), ("Only when I press Sync now", 0))


def category_of(site_id: str) -> str:
    return f"website:{site_id}"


def page_file_name(site_id: str, url: str, suffix: str) -> str:
    """Stable per URL: ``site-<id>-<path words>-<hash>.<suffix>`` (a plain, safe file name)."""
    path = urlsplit(url).path.strip("/") or "home"
    words = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")[:60] or "page"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"site-{site_id}-{words}-{digest}{suffix}"


class WebsiteSync:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], files: KnowledgeFiles, *,
                 limits: CrawlLimits = CrawlLimits()) -> None:
        self._sessions = sessions
        self._files = files
        self._crawler = SiteCrawler(limits)
        self._running: set[str] = set()

    async def add(self, start_url: str, every_hours: int) -> Website:
        origin_of(start_url)  # CrawlError for anything but http(s)
        site = Website(id=new_id()[:12], start_url=start_url.strip()[:2000], every_hours=every_hours,
                       created_at=utcnow(), last_report={})
        try:
            async with self._sessions() as session, session.begin():
                session.add(site)
        except IntegrityError as exc:
            raise CrawlError("this website is in the knowledge base already") from exc
        return site

    async def sites(self) -> list[Website]:
        async with self._sessions() as session:
            return list(await session.scalars(select(Website).order_by(Website.created_at)))

    async def get(self, site_id: str) -> Website | None:
        async with self._sessions() as session:
            return await session.get(Website, site_id)

    async def sync(self, site: Website) -> dict:
        """Crawl the site and bring its documents up to date; returns (and records) what changed."""
        if site.id in self._running:
            return {"busy": True}
        self._running.add(site.id)
        try:
            async with aiohttp.ClientSession() as http:
                crawl = await self._crawler.crawl(site.start_url, http)
            statuses: Counter = Counter()
            names: set[str] = set()
            for page in crawl.pages:
                name = page_file_name(site.id, page.url, page.suffix)
                names.add(name)
                try:
                    _info, status = await self._files.add(name, page.data, category=category_of(site.id))
                    status = "unchanged" if status == "skipped" else status  # same content: nothing re-embedded
                except KnowledgeError as exc:
                    status = "failed"
                    log.info("website page not indexed", extra={"site": site.id, "reason": exc.reason[:200]})
                statuses[status] += 1
            for document in await self._files.catalog.list_documents(category=category_of(site.id)):
                if document.name not in names and not crawl.stopped:  # a capped crawl cannot tell what is gone
                    await self._files.delete(document)
                    statuses["removed"] += 1
            report = {"pages": len(crawl.pages), **statuses, "not_fetched": len(crawl.skipped),
                      "stopped": crawl.stopped or ""}
            async with self._sessions() as session, session.begin():
                await session.execute(update(Website).where(Website.id == site.id)
                                      .values(last_synced_at=utcnow(), last_report=report))
            return report
        finally:
            self._running.discard(site.id)

    async def remove(self, site: Website) -> None:
        for document in await self._files.catalog.list_documents(category=category_of(site.id)):
            await self._files.delete(document)
        async with self._sessions() as session, session.begin():
            await session.delete(await session.get(Website, site.id))

    async def sync_due(self) -> int:
        """Sync every site whose schedule says it is time; returns how many were synced."""
        now = utcnow()
        due = [site for site in await self.sites() if site.every_hours
               and (site.last_synced_at is None or now - site.last_synced_at >= timedelta(hours=site.every_hours))]
        for site in due:
            try:
                await self.sync(site)
            except Exception:  # one site failing must not stop the others; the next period tries again
                log.exception("website sync failed", extra={"site": site.id})
        return len(due)


class WebsitePages:
    def __init__(self, *, gate: Gate, sync: WebsiteSync, audit: AuditLog) -> None:
        self._gate = gate
        self._sync = sync
        self._audit = audit

    def routes(self) -> list[web.RouteDef]:
        def owner(handler):  # noqa: ANN001, ANN202
            return self._gate.guard(handler, owner=True)

        site = r"{site_id:[A-Za-z0-9]{1,16}}"
        return [
            web.get("/console/websites", owner(self.websites_page)),
            web.post("/console/websites", owner(self.add)),
            web.post(f"/console/websites/{site}/sync", owner(self.sync_now)),
            web.post(f"/console/websites/{site}/delete", owner(self.delete)),
        ]

    async def websites_page(self, request: web.Request) -> web.Response:
        csrf = request[SIGNED_IN].csrf_token
        rows = join(render(
            '<tr><td data-label="Website"><a href="$url">$url</a></td><td data-label="Re-sync">$every</td>'
            '<td data-label="Last sync">$last</td><td data-label="Result" class="report">$report</td>'
            '<td data-label="Actions" class="actions">$sync$delete</td></tr>',
            url=site.start_url, every=_schedule_label(site.every_hours), last=when(site.last_synced_at),
            report=_report(site.last_report), sync=button_form(f"/console/websites/{site.id}/sync",
                                                               f"Sync {site.start_url} now", csrf),
            delete=button_form(f"/console/websites/{site.id}/delete", f"Remove {site.start_url}", csrf,
                               css="danger")) for site in await self._sync.sites())
        table = (render('<table class="inbox"><caption class="sr-only">Websites</caption><thead><tr>'
                        '<th scope="col">Website</th><th scope="col">Re-sync</th><th scope="col">Last sync</th>'
                        '<th scope="col">Result</th><th scope="col">Actions</th></tr></thead><tbody>$rows</tbody>'
                        '</table>', rows=rows) if rows else Markup('<p class="muted">No websites yet.</p>'))
        options = join(render('<option value="$hours"$selected>$label</option>', hours=hours, label=label,
                              selected=Markup(" selected") if hours == 24 else Markup("")) for label, hours in SCHEDULES)
        body = render(_PAGE, message=flash(request), table=table, options=options, csrf=hidden("csrf", csrf))
        return signed_in_page(request, "Websites", body, active="knowledge")

    async def add(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            every = int(str(form.get("every_hours", "24")))
            if every not in {hours for _label, hours in SCHEDULES}:
                raise ValueError(every)
            site = await self._sync.add(str(form.get("url", "")), every)
        except (ValueError, CrawlError) as exc:
            return redirect("/console/websites?error=" + quote(str(exc) if isinstance(exc, CrawlError)
                                                               else "Pick a schedule from the list."))
        await self._audit.record(request[SIGNED_IN].user.actor_id, "website.add", site.id,
                                 detail={"url": site.start_url, "every_hours": every})
        return await self._synced(request, site)

    async def sync_now(self, request: web.Request) -> web.StreamResponse:
        return await self._synced(request, await self._site(request))

    async def _synced(self, request: web.Request, site: Website) -> web.StreamResponse:
        try:
            report = await self._sync.sync(site)
        except CrawlError as exc:
            return redirect("/console/websites?error=" + quote(str(exc)))
        await self._audit.record(request[SIGNED_IN].user.actor_id, "website.sync", site.id, detail=report)
        return redirect("/console/websites?done=" + quote(f"{site.start_url}: {_report(report)}"))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        site = await self._site(request)
        await self._sync.remove(site)
        await self._audit.record(request[SIGNED_IN].user.actor_id, "website.remove", site.id,
                                 detail={"url": site.start_url})
        return redirect("/console/websites?done=" + quote(f"Removed {site.start_url} and its pages."))

    async def _site(self, request: web.Request) -> Website:
        site = await self._sync.get(request.match_info["site_id"])
        if site is None:
            raise web.HTTPNotFound(text="No such website.")
        return site


async def website_loop(sync: WebsiteSync, period_seconds: float) -> None:
    """Embedded mode: sync due websites every ``period_seconds`` (production: the worker's cron)."""
    while True:
        await asyncio.sleep(period_seconds)
        try:
            await sync.sync_due()
        except Exception:
            log.exception("website sync pass failed; retrying next period")


def _schedule_label(hours: int) -> str:
    return next((label for label, value in SCHEDULES if value == hours), f"every {hours} hours")


def _report(report: dict) -> str:
    if not report:
        return "not synced yet"
    if report.get("busy"):
        return "a sync is already running"
    parts = [f"{report.get('pages', 0)} pages"]
    parts += [f"{report[key]} {key}" for key in ("added", "updated", "unchanged", "removed", "failed")
              if report.get(key)]
    if report.get("not_fetched"):
        parts.append(f"{report['not_fetched']} links not fetched (other type, robots.txt, errors)")
    if report.get("stopped"):
        parts.append(f"stopped at the {report['stopped']} cap")
    return ", ".join(parts)


_PAGE = """<p><a href="/console/knowledge">← Knowledge</a></p><h1>Websites</h1>$message
<section class="card" aria-labelledby="add-site-h"><h2 id="add-site-h">Add a website</h2>
<p class="muted">Pages of that site only (its sitemap and links), as robots.txt allows; HTML, PDF, Word,
text and CSV. A re-sync re-embeds only the pages that changed.</p>
<form method="post" action="/console/websites" class="stack">$csrf
<label for="site-url">Start address</label>
<input id="site-url" name="url" type="url" required placeholder="https://www.example.sg/">
<label for="site-every">Re-sync</label><select id="site-every" name="every_hours">$options</select>
<button type="submit">Add and crawl</button>
</form></section>
<section class="card" aria-labelledby="sites-h"><h2 id="sites-h">Websites in the knowledge base</h2>$table</section>"""
