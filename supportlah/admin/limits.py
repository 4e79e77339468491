"""Rate limits per client address (HTTP) and per customer (pipeline), and a message size cap.

Fixed one-minute windows: Redis ``INCR`` + ``EXPIRE`` in production so every process
shares the count, a dict in embedded mode. Webhooks are not limited per address —
Twilio and Telegram call from shared addresses and sign their requests — their
customers are limited per contact instead, after the message is stored, so a
flood never reaches the agent (or an LLM bill) but is never lost either.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from redis.asyncio import Redis

from config.types import Reply
from channels.messages import Channel, OutboundMessage
from memory.store import StoredMessage
from workers.hooks import Decision

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after: int  # seconds until the window resets


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> RateDecision: ...


class LocalRateLimiter:
    """In-process windows (embedded mode: one process serves everything)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
        count = self._counts.get((key, window), 0) + 1
        self._counts[(key, window)] = count
        return RateDecision(count <= limit, count, WINDOW_SECONDS - int(now % WINDOW_SECONDS))


class RedisRateLimiter:
    """Shared windows in Redis, so API processes and workers count together."""

    def __init__(self, redis: Redis, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        redis_key = f"{self._prefix}:ratelimit:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        return RateDecision(int(count) <= limit, int(count), WINDOW_SECONDS - int(now % WINDOW_SECONDS))


def _pseudonym(value: str) -> str:
    """Counters are keyed by a hash: a Redis key never names a customer or an address (and expires in 2 minutes)."""
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def client_address(request: web.Request, trusted_proxy_hops: int) -> str:
    """The caller's address; with N trusted proxies, the Nth address from the right of X-Forwarded-For."""
    if trusted_proxy_hops:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if len(forwarded) >= trusted_proxy_hops:
            return forwarded[-trusted_proxy_hops][:64]
    return (request.remote or "unknown")[:64]


def _limited_path(path: str) -> bool:
    return not path.startswith(("/webhooks/", "/static/")) and path not in ("/healthz", "/readyz")


def ip_rate_limit_middleware(
    limiter: RateLimiter, per_minute: int, trusted_proxy_hops: int,
    on_limited: Callable[[str], None] | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def limit_by_address(request: web.Request, handler):  # noqa: ANN001, ANN202
        if not _limited_path(request.path):
            return await handler(request)
        decision = await limiter.hit(f"ip:{_pseudonym(client_address(request, trusted_proxy_hops))}", per_minute)
        if not decision.allowed:
            if on_limited is not None:
                on_limited("ip")
            return web.json_response({"error": "too many requests; slow down"}, status=429,
                                     headers={"Retry-After": str(decision.retry_after)})
        return await handler(request)

    return limit_by_address


@web.middleware
async def json_api_errors(request: web.Request, handler):  # noqa: ANN001, ANN201
    """Under ``/api/`` even aiohttp's own refusals (unknown path, wrong method, body too large) are JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")}
        return web.json_response({"error": exc.reason.lower() if exc.reason else "request refused"},
                                 status=exc.status, headers=headers)


_TEXTS = {
    "slow_down": {
        "en": "You're sending messages faster than we can read them. Please wait a minute, then continue.",
        "zh": "您发送消息的速度太快了，请稍等一分钟再继续。",
        "ms": "Anda menghantar mesej terlalu cepat. Sila tunggu seminit, kemudian teruskan.",
        "ta": "நீங்கள் மிக வேகமாகச் செய்திகளை அனுப்புகிறீர்கள். ஒரு நிமிடம் காத்திருந்து பின்னர் தொடருங்கள்.",
    },
    "too_long": {
        "en": "Your message is too long for me (at most {limit} characters). Please send a shorter one.",
        "zh": "您的消息太长了（最多 {limit} 个字符），请发送较短的消息。",
        "ms": "Mesej anda terlalu panjang (maksimum {limit} aksara). Sila hantar mesej yang lebih pendek.",
        "ta": "உங்கள் செய்தி மிக நீளமாக உள்ளது (அதிகபட்சம் {limit} எழுத்துகள்). சுருக்கமாக அனுப்புங்கள்.",
    },
}


def limit_text(key: str, language: str | None, **fields: object) -> str:
    table = _TEXTS[key]
    return table.get(language or "en", table["en"]).format(**fields)


class ContactRateLimitHook:
    """Takes over messages from a customer over their per-minute budget or over the size cap.

    The first message over the budget gets one "slow down" reply; the rest of that
    minute is recorded but not answered. Counting happens on a message's first attempt
    only, so a retried job is not counted twice.
    """

    def __init__(self, limiter: RateLimiter, *, per_minute: int, max_message_chars: int,
                 on_limited: Callable[[str], None] | None = None) -> None:
        self._limiter = limiter
        self._per_minute = per_minute
        self._max_chars = max_message_chars
        self._on_limited = on_limited

    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        msg = stored.message
        if msg.channel in (Channel.STAFF, Channel.CLI) or msg.metadata.get("staff") == "true":
            return None
        language = stored.conversation_language or "en"
        if stored.attempts == 0:
            decision = await self._limiter.hit(f"contact:{_pseudonym(stored.contact_id)}", self._per_minute)
            if not decision.allowed:
                if self._on_limited is not None:
                    self._on_limited("contact")
                log.info("customer over rate limit", extra={"message_id": msg.id, "count": decision.count})
                if decision.count == self._per_minute + 1:
                    return self._reply(limit_text("slow_down", language), language, "rate_limited")
                return Decision(reply=Reply(text="", language=language, confidence=1.0,
                                            backend={"answerer": "rate_limited"}), parts=[])
        if len(msg.text) > self._max_chars:
            return self._reply(limit_text("too_long", language, limit=self._max_chars), language, "too_long")
        return None

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []

    @staticmethod
    def _reply(text: str, language: str, answerer: str) -> Decision:
        return Decision(reply=Reply(text=text, language=language, confidence=1.0, backend={"answerer": answerer}),
                        metadata={"keyboard": "[]"})
