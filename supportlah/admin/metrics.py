"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Labels are only ever channels, states, HTTP methods, route *templates* and status
codes — never a path with an id in it, a phone number or any other customer value —
so a metrics backend holds no personal data.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from memory.models import Contact, InboundMessageRow, InboundStatus, OutboundPart
from memory.pdpa import ErasureRow
from rag.catalog import Document

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, dict, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        lines.append(f"{name}{suffix}{_labels(sorted(labels.items()))} {value:g}")
    return lines


class HttpMetrics:
    """Request counts and latencies per route template, and requests refused by rate limits."""

    def __init__(self) -> None:
        self._requests: Counter = Counter()
        self._buckets: Counter = Counter()
        self._sums: Counter = Counter()
        self._counts: Counter = Counter()
        self._limited: Counter = Counter()

    def note_limited(self, scope: str) -> None:
        self._limited[scope] += 1

    def middleware(self):  # noqa: ANN201
        @web.middleware
        async def measure(request: web.Request, handler):  # noqa: ANN001, ANN202
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                resource = request.match_info.route.resource if request.match_info.route else None
                route = resource.canonical if resource is not None else "unmatched"
                self.observe(request.method, route, status, time.perf_counter() - started)

        return measure

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests[(method, route, str(status))] += 1
        key = (method, route)
        self._sums[key] += seconds
        self._counts[key] += 1
        for bound in _DURATION_BUCKETS:
            if seconds <= bound:
                self._buckets[(method, route, bound)] += 1

    def lines(self) -> list[str]:
        lines = _family("supportlah_http_requests_total", "counter", "HTTP requests by route template and status.",
                        (("", {"method": m, "route": r, "status": s}, n)
                         for (m, r, s), n in sorted(self._requests.items())))
        samples = []
        for (method, route), count in sorted(self._counts.items()):
            labels = {"method": method, "route": route}
            for bound in _DURATION_BUCKETS:
                samples.append(("_bucket", {**labels, "le": f"{bound:g}"}, self._buckets[(method, route, bound)]))
            samples.append(("_bucket", {**labels, "le": "+Inf"}, count))
            samples.append(("_sum", labels, round(self._sums[(method, route)], 6)))
            samples.append(("_count", labels, count))
        lines += _family("supportlah_http_request_duration_seconds", "histogram", "HTTP request latency.", samples)
        lines += _family("supportlah_rate_limited_total", "counter", "Requests or messages refused by a rate limit.",
                         (("", {"scope": scope}, n) for scope, n in sorted(self._limited.items())))
        return lines


async def database_lines(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Gauges read from the store at scrape time (so every process reports the same numbers)."""
    async with sessions() as session:
        inbound = (await session.execute(
            select(InboundMessageRow.channel, InboundMessageRow.status, func.count()).group_by(
                InboundMessageRow.channel, InboundMessageRow.status)
        )).all()
        parts = (await session.execute(
            select(OutboundPart.channel, OutboundPart.state, func.count()).group_by(
                OutboundPart.channel, OutboundPart.state)
        )).all()
        contacts = (await session.execute(select(Contact.channel, func.count()).group_by(Contact.channel))).all()
        documents, chunks = (await session.execute(
            select(func.count(Document.id), func.coalesce(func.sum(Document.chunk_count), 0))
        )).one()
        erasures = await session.scalar(select(func.count()).select_from(ErasureRow))
        unanswered = await session.scalar(
            select(func.count()).select_from(InboundMessageRow).where(
                InboundMessageRow.status.not_in(InboundStatus.DONE))
        )
    lines = _family("supportlah_inbound_messages", "gauge", "Stored customer messages by channel and status.",
                    (("", {"channel": c, "status": s}, n) for c, s, n in inbound))
    lines += _family("supportlah_outbound_parts", "gauge", "Stored reply parts by channel and delivery state.",
                     (("", {"channel": c, "state": s}, n) for c, s, n in parts))
    lines += _family("supportlah_contacts", "gauge", "Known customers by channel.",
                     (("", {"channel": c}, n) for c, n in contacts))
    lines += _family("supportlah_unanswered_messages", "gauge", "Messages accepted and not yet answered.",
                     [("", {}, unanswered or 0)])
    lines += _family("supportlah_kb_documents", "gauge", "Documents in the knowledge base.", [("", {}, documents)])
    lines += _family("supportlah_kb_chunks", "gauge", "Chunks in the knowledge base.", [("", {}, chunks)])
    lines += _family("supportlah_erasures_total", "counter", "Contacts erased on request.", [("", {}, erasures or 0)])
    return lines
