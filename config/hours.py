"""When staff are around: weekly hours plus public holidays, in the business's time zone.

Used to tell a customer who escalates after hours when to expect a person, and to
count SLA time in staffed minutes only (a ticket opened on Saturday evening is not
overdue on Sunday morning).

The weekly spec is ``"mon-fri 09:00-18:00, sat 09:00-13:00"``: comma-separated
entries, each a day (``mon``), a day range (``mon-fri``, ``sat-sun``) or ``daily``,
followed by one or more ``HH:MM-HH:MM`` spans (``24:00`` ends a span at midnight).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_SEARCH_DAYS = 21  # how far ahead we look for the next staffed minute (covers long holiday runs)

Span = tuple[int, int]  # minutes since local midnight, [start, end)


class BusinessHoursError(ValueError):
    """The business-hours spec or time zone cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class BusinessHours:
    weekly: dict[int, tuple[Span, ...]]  # weekday (0 = Monday) -> spans
    holidays: frozenset[date]
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, *, holidays: Iterable[date] = (), time_zone: str = "Asia/Singapore") -> BusinessHours:
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BusinessHoursError(f"unknown time zone {time_zone!r}") from exc
        weekly: dict[int, list[Span]] = {day: [] for day in range(7)}
        for entry in filter(None, (part.strip() for part in spec.lower().split(","))):
            days_spec, *spans = entry.split()
            if not spans:
                raise BusinessHoursError(f"{entry!r}: give the hours after the day, e.g. 'mon-fri 09:00-18:00'")
            for day in _days(days_spec):
                weekly[day].extend(_span(span) for span in spans)
        return cls({day: tuple(sorted(spans)) for day, spans in weekly.items()}, frozenset(holidays), zone)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def spans_on(self, day: date) -> tuple[Span, ...]:
        return () if day in self.holidays else self.weekly[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        local = self.local(at)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.spans_on(local.date()))

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` itself when staffed, else the next moment staff are in; None if never within three weeks."""
        for start, _end in self._intervals_from(at):
            return max(start, at)
        return None

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime | None:
        """The moment ``minutes`` staffed minutes after ``start`` (None if the calendar has no such time)."""
        remaining = timedelta(minutes=minutes)
        for begin, end in self._intervals_from(start):
            begin = max(begin, start)
            if end - begin >= remaining:
                return begin + remaining
            remaining -= end - begin
        return None

    def _intervals_from(self, at: datetime) -> Iterable[tuple[datetime, datetime]]:
        """Staffed intervals (UTC) that end after ``at``, in order."""
        first = self.local(at).date()
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            for start, end in self.spans_on(day):
                begin_at = _at(day, start, self.zone)
                end_at = _at(day, end, self.zone)
                if end_at > at:
                    yield begin_at, end_at


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minute)
    return local.astimezone(timezone.utc)


def _days(spec: str) -> list[int]:
    if spec in ("daily", "every", "all"):
        return list(range(7))
    first, _, last = spec.partition("-")
    try:
        start = DAYS.index(first[:3])
        end = DAYS.index(last[:3]) if last else start
    except ValueError as exc:
        raise BusinessHoursError(f"unknown day {spec!r}: use mon, tue, wed, thu, fri, sat, sun or daily") from exc
    return [(start + i) % 7 for i in range((end - start) % 7 + 1)]


def _span(text: str) -> Span:
    match = _SPAN.match(text)
    if match is None:
        raise BusinessHoursError(f"{text!r} is not a span like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (h1 < 24 and m1 < 60 and m2 < 60 and end <= 24 * 60 and start < end):
        raise BusinessHoursError(f"{text!r}: the span must start before it ends, within one day")
    return start, end
