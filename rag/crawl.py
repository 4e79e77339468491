"""Crawl a business's own website for the knowledge base: one site, politely, within caps.

Starting from a URL, pages of the same origin (scheme, host, port) are fetched: the start
page, the URLs listed in the sitemap (``Sitemap:`` lines of robots.txt, else
``/sitemap.xml``, one level of sitemap index) and the links of every HTML page. robots.txt
is obeyed for our user agent; only ``text/html`` and the file types ingestion reads are
kept; each page is capped in bytes, the crawl in pages and in seconds. The HTTP session
is passed in (the composition root owns clients).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import aiohttp

log = logging.getLogger(__name__)

USER_AGENT = "supportlah-crawler/1.0"
TYPES = {  # content type -> the file suffix ingestion reads it by
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)


@dataclass(frozen=True)
class CrawlLimits:
    max_pages: int = 50
    max_page_bytes: int = 2 * 1024 * 1024
    max_seconds: float = 120.0
    request_timeout: float = 15.0


@dataclass(frozen=True)
class Page:
    url: str
    suffix: str  # .html, .pdf …
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class CrawlResult:
    pages: list[Page] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, why)
    stopped: str | None = None  # "pages" | "time" when a cap ended the crawl early


class CrawlError(Exception):
    """The start URL cannot be crawled (not http(s), or the site did not answer)."""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CrawlError(f"{url!r} is not an http(s) address")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class SiteCrawler:
    def __init__(self, limits: CrawlLimits = CrawlLimits()) -> None:
        self._limits = limits

    async def crawl(self, start_url: str, http: aiohttp.ClientSession) -> CrawlResult:
        origin = origin_of(start_url)
        deadline = time.monotonic() + self._limits.max_seconds
        robots = await self._robots(origin, http)
        result = CrawlResult()
        queue: deque[str] = deque([_clean(start_url)])
        for url in await self._sitemap_urls(origin, robots, http):
            queue.append(url)
        seen: set[str] = set()
        while queue:
            if len(result.pages) >= self._limits.max_pages:
                result.stopped = "pages"
                break
            if time.monotonic() > deadline:
                result.stopped = "time"
                break
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            if not url.startswith(origin + "/") and url != origin:
                continue  # another site: never followed
            if not robots.can_fetch(USER_AGENT, url):
                result.skipped.append((url, "robots.txt"))
                continue
            page, why, links = await self._fetch(url, origin, http)
            if page is None:
                result.skipped.append((url, why))
                continue
            result.pages.append(page)
            queue.extend(link for link in links if link not in seen)
        return result

    async def _fetch(self, url: str, origin: str, http: aiohttp.ClientSession) -> tuple[Page | None, str, list[str]]:
        try:
            async with http.get(url, headers={"User-Agent": USER_AGENT},
                                timeout=aiohttp.ClientTimeout(total=self._limits.request_timeout)) as response:
                final = str(response.url)
                if not (final.startswith(origin + "/") or final == origin):
                    return None, "redirected to another site", []
                if response.status != 200:
                    return None, f"HTTP {response.status}", []
                kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                suffix = TYPES.get(kind)
                if suffix is None:
                    return None, f"type {kind or 'unknown'} not read", []
                declared = response.content_length
                if declared is not None and declared > self._limits.max_page_bytes:
                    return None, "larger than the page cap", []
                data = await response.content.read(self._limits.max_page_bytes + 1)
                if len(data) > self._limits.max_page_bytes:
                    return None, "larger than the page cap", []
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return None, f"fetch failed ({type(exc).__name__})", []
        links: list[str] = []
        if suffix == ".html":
            parser = _Links()
            parser.feed(data.decode(response.charset or "utf-8", errors="replace"))
            links = [_clean(urljoin(final, href)) for href in parser.hrefs]
        return Page(url=_clean(final), suffix=suffix, data=data), "", links

    async def _robots(self, origin: str, http: aiohttp.ClientSession) -> RobotFileParser:
        robots = RobotFileParser()
        text = await self._text(f"{origin}/robots.txt", http)
        robots.parse((text or "").splitlines())  # no robots.txt: everything is allowed
        return robots

    async def _sitemap_urls(self, origin: str, robots: RobotFileParser, http: aiohttp.ClientSession) -> list[str]:
        listed = [url for url in (robots.site_maps() or []) if url.startswith(origin + "/")]
        urls: list[str] = []
        for sitemap in listed or [f"{origin}/sitemap.xml"]:
            for loc in _LOC.findall(await self._text(sitemap, http) or ""):
                if loc.endswith(".xml") and loc.startswith(origin + "/"):  # a sitemap index: one level down
                    urls += _LOC.findall(await self._text(loc, http) or "")
                else:
                    urls.append(loc)
        return [_clean(url) for url in urls]

    async def _text(self, url: str, http: aiohttp.ClientSession) -> str | None:
        try:
            async with http.get(url, headers={"User-Agent": USER_AGENT},
                                timeout=aiohttp.ClientTimeout(total=self._limits.request_timeout)) as response:
                if response.status != 200:
                    return None
                data = await response.content.read(self._limits.max_page_bytes)
                return data.decode(response.charset or "utf-8", errors="replace")
        except (aiohttp.ClientError, asyncio.TimeoutError):
            log.info("crawl: could not read %s", url)
            return None


def _clean(url: str) -> str:
    return urldefrag(url.strip())[0]
