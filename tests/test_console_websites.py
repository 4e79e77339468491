"""Add a website from the console: a small site served by the test on localhost is crawled (sitemap,
links, robots.txt, types, caps), answers from it, and a re-sync re-embeds only the page that changed."""
from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from channels.messages import utcnow
from config.settings import load_settings
from rag.crawl import CrawlLimits, SiteCrawler
from supportlah.app import create_app
from supportlah.console.models import Role, Website
from supportlah.console.websites import WebsiteSync
from supportlah.console.wiring import knowledge_files, sync_due_websites
from tests.harness import MECHANICS, running_container
from tests.test_console import Console, add_user

PAGES = {
    "/": ('<html><body><h1>ChillPro</h1><a href="/about">About us</a> <a href="/private/staff">Staff</a> '
          '<a href="https://elsewhere.example/">Partner</a> <a href="/logo.png">logo</a> <a href="/about#team">Team</a>'
          '</body></html>'),
    "/about": "<html><body><h1>About</h1><p>We have serviced aircon units in Singapore since 2009.</p></body></html>",
    "/prices": ("<html><body><h1>Prices</h1><p>A chemical overhaul of a wall-mounted unit costs $150.</p>"
                "</body></html>"),
    "/private/staff": "<html><body>Staff rota: not for the public.</body></html>",
}


class Site:
    """The business's website, changeable during the test."""

    def __init__(self) -> None:
        self.pages = dict(PAGES)
        self.hits: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path == "/robots.txt":
            return web.Response(text=f"User-agent: *\nDisallow: /private/\nSitemap: {request.url.origin()}/sitemap.xml\n")
        if request.path == "/sitemap.xml":
            body = f"<urlset><url><loc>{request.url.origin()}/prices</loc></url></urlset>"
            return web.Response(text=body, content_type="application/xml")
        if request.path == "/logo.png":
            return web.Response(body=b"\x89PNG....", content_type="image/png")
        if request.path in self.pages:
            return web.Response(text=self.pages[request.path], content_type="text/html")
        raise web.HTTPNotFound()


@pytest.fixture
async def site():
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    async with TestServer(app) as server:
        site.url = str(server.make_url("/"))  # type: ignore[attr-defined]
        yield site


async def test_a_website_is_crawled_politely_and_resynced_page_by_page(backend, site):
    settings = backend.settings(**MECHANICS, rate_limit_ip_per_minute=10_000)
    async with running_container(settings, start_queue=False) as container:
        await add_user(container, "owner@example.com", Role.OWNER)
        async with TestClient(TestServer(create_app(container))) as client:
            console = Console(client, container)
            await console.sign_in("owner@example.com")
            await console.page("/console/websites")
            added = await console.post("/console/websites", url=site.url, every_hours="24")
            assert added.status == 303
            page = await console.page(added.headers["Location"])
            assert "3 pages, 3 added" in page and "links not fetched" in page, page[-3000:]
            assert "/private/staff" not in site.hits  # robots.txt said no
            documents = {d.name: d for d in await container.catalog.list_documents()}
            assert len(documents) == 3 and all(name.startswith("site-") for name in documents)
            hits = await container.retriever.search("How much is a chemical overhaul?", k=1)
            assert "$150" in hits[0].text

            site.pages["/prices"] = site.pages["/prices"].replace("$150", "$170")
            del site.pages["/about"]  # still linked from the home page, but gone (404)
            [row] = await _sites(container)
            resynced = await console.post(f"/console/websites/{row.id}/sync")
            page = await console.page(resynced.headers["Location"])
            assert "2 pages, 1 updated, 1 unchanged, 1 removed" in page, page[-3000:]
            hits = await container.retriever.search("How much is a chemical overhaul?", k=1)
            assert "$170" in hits[0].text
            after = {d.name: d for d in await container.catalog.list_documents()}
            home = next(name for name in after if "-home-" in name)
            assert after[home].updated_at == documents[home].updated_at  # unchanged: not re-indexed


async def _sites(container) -> list[Website]:  # noqa: ANN001
    async with container.privacy.sessions() as session:
        return list(await session.scalars(select(Website)))


async def test_the_crawler_stops_at_its_caps_and_stays_on_the_site(site):
    async with aiohttp.ClientSession() as http:
        capped = await SiteCrawler(CrawlLimits(max_pages=2)).crawl(site.url, http)
        small = await SiteCrawler(CrawlLimits(max_page_bytes=100)).crawl(site.url, http)
    assert len(capped.pages) == 2 and capped.stopped == "pages"
    assert small.pages == [] and all(why in ("larger than the page cap", "robots.txt") or why.startswith("type")
                                     for _url, why in small.skipped)
    assert not any("elsewhere.example" in url for url, _why in capped.skipped + small.skipped)


async def test_due_websites_are_resynced_on_their_schedule(site, tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **MECHANICS)
    async with running_container(settings, start_queue=False) as container:
        sync = WebsiteSync(container.privacy.sessions, knowledge_files(container))
        daily = await sync.add(site.url, 24)
        manual = await sync.add(site.url + "prices", 0)  # only when the owner presses "Sync now"
        assert await sync_due_websites(container) == 1  # the daily one, never synced yet
        assert await sync_due_websites(container) == 0  # synced a moment ago
        async with container.privacy.sessions() as session, session.begin():
            await session.execute(update(Website).where(Website.id == daily.id)
                                  .values(last_synced_at=utcnow() - timedelta(hours=25)))
        assert await sync_due_websites(container) == 1
        assert (await sync.get(manual.id)).last_synced_at is None
        assert (await sync.get(daily.id)).last_report["pages"] == 3
