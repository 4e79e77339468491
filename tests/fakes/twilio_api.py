"""A local fake of the slice of Twilio's REST API we use: Messages create and media files.

It speaks the documented wire format (form POST with basic auth, 201 message
resource, ``{"code", "message", "more_info", "status"}`` error bodies) so the
real ``twilio`` SDK can be pointed at it with ``client.api.base_url``. Anything
it does not expect is answered 400 *and* recorded in :attr:`FakeTwilioApi.errors`,
which tests assert is empty.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

from aiohttp import web
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600


@dataclass
class SentMessage:
    """One accepted or refused ``Messages.json`` POST as the fake saw it."""

    at: datetime
    to: str | None
    from_: str | None
    body: str | None
    content_sid: str | None
    content_variables: str | None
    status_callback: str | None
    answered: int
    sid: str | None = None


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


FAILURES = {
    "429": _Failure(429, 20429, "Too Many Requests", {"Retry-After": "7"}),
    "500": _Failure(500, 20500, "Internal Server Error"),
    "63016": _Failure(
        400,
        63016,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
    "21211": _Failure(400, 21211, "The 'To' number is not a valid phone number."),
    "21610": _Failure(400, 21610, "Attempt to send to unsubscribed recipient"),
}


@dataclass
class _Media:
    data: bytes
    content_type: str
    send_length: bool


class FakeTwilioApi:
    """Start with :meth:`start` (binds 127.0.0.1 on a free port), stop with :meth:`stop`."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[SentMessage] = []
        self.media_requests: list[str] = []
        self.list_requests: list[dict[str, str]] = []
        self.account_fetches = 0
        self.errors: list[str] = []
        self._media: dict[str, _Media] = {}
        self._cdn_tokens: dict[str, str] = {}
        self._failures: list[_Failure] = []
        self._stalls: list[float] = []
        self._lost_responses = 0
        self.lost_responses = 0  # how many accepted messages never got their 201 out
        self.drop_rate = 0.0  # fault injection: the share of accepted creates whose response is lost
        self.failure_rate = 0.0  # fault injection: the share of creates refused with ``failure_kind``
        self.failure_kinds: tuple[str, ...] = ("429", "500")  # what ``failure_rate`` answers, at random
        self._rng = random.Random(17)
        self._creates = 0
        self._nth_failures: dict[int, _Failure] = {}
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle ------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create_message)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._list_messages)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}.json", self._account)
        app.router.add_get("/media/{name}", self._media_entry)
        app.router.add_get("/cdn/{token}", self._media_cdn)
        app.router.add_route("*", "/{tail:.*}", self._unexpected)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- scripting ------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` message creates with a Twilio error: 429, 500, 63016, 21211, 21610."""
        failure = FAILURES[kind]
        if retry_after is not None:
            failure = _Failure(failure.status, failure.code, failure.message, {"Retry-After": retry_after})
        self._failures.extend([failure] * times)

    def fail_nth(self, n: int, kind: str, *, retry_after: str | None = None) -> None:
        """Answer the ``n``-th message create from now (1 = the next) with a Twilio error."""
        failure = FAILURES[kind]
        if retry_after is not None:
            failure = _Failure(failure.status, failure.code, failure.message, {"Retry-After": retry_after})
        self._nth_failures[self._creates + n] = failure

    def lose_response_next(self, times: int = 1) -> None:
        """Accept the next ``times`` creates (they are sent, with a sid, and listed) but close the
        connection before the 201 goes out: the client cannot know the message went through."""
        self._lost_responses += times

    def stall_next(self, seconds: float) -> None:
        """Hold the next message create for ``seconds`` before answering (client timeouts)."""
        self._stalls.append(seconds)

    def add_media(self, name: str, data: bytes, content_type: str, *, send_length: bool = True) -> str:
        """Serve ``data`` at ``/media/<name>`` (basic auth, then a redirect hop); returns its URL."""
        self._media[name] = _Media(data, content_type, send_length)
        return f"{self.base_url}/media/{name}"

    # --- handlers -------------------------------------------------------------
    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unexpected_error(request, "bad or missing basic auth on Messages.json", 401)
        if request.match_info["account"] != self.account_sid:
            return self._unexpected_error(request, f"wrong account in path: {request.match_info['account']}")
        if request.content_type != "application/x-www-form-urlencoded":
            return self._unexpected_error(request, f"unexpected content type {request.content_type}")
        form = await request.post()
        if self._stalls:
            await asyncio.sleep(self._stalls.pop(0))
        to, from_ = form.get("To"), form.get("From")
        body, content_sid = form.get("Body"), form.get("ContentSid")
        record = SentMessage(
            at=datetime.now(timezone.utc),
            to=to,
            from_=from_,
            body=body,
            content_sid=content_sid,
            content_variables=form.get("ContentVariables"),
            status_callback=form.get("StatusCallback"),
            answered=0,
        )
        self.messages.append(record)
        problem = None
        if not to:
            problem = "missing To"
        elif not from_:
            problem = "missing From"
        elif not body and not content_sid:
            problem = "missing Body and ContentSid"
        elif body and content_sid:
            problem = "both Body and ContentSid"
        elif body and len(body) > MAX_BODY_CHARS:
            problem = f"Body of {len(body)} chars exceeds {MAX_BODY_CHARS}"
        elif to.startswith("whatsapp:") != from_.startswith("whatsapp:"):
            problem = "To and From mix WhatsApp and SMS"
        if problem:
            record.answered = 400
            return self._unexpected_error(request, problem)
        self._creates += 1
        if self._creates in self._nth_failures:
            self._failures.insert(0, self._nth_failures.pop(self._creates))
        if not self._failures and self.failure_rate and self._rng.random() < self.failure_rate:
            kind = self._rng.choice(self.failure_kinds)
            self.fail_next(kind, retry_after="1" if kind == "429" else None)
        if self._failures:
            failure = self._failures.pop(0)
            record.answered = failure.status
            return web.json_response(
                {
                    "code": failure.code,
                    "message": failure.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{failure.code}",
                    "status": failure.status,
                },
                status=failure.status,
                headers=failure.headers,
            )
        sid = next(self._sids)
        record.sid, record.answered = sid, 201
        if self._lost_responses or (self.drop_rate and self._rng.random() < self.drop_rate):
            self._lost_responses = max(0, self._lost_responses - 1)
            self.lost_responses += 1
            record.answered = 0
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # aiohttp: the client went away, nothing is written
        return web.json_response(self._resource(record), status=201)

    def _resource(self, record: SentMessage) -> dict:
        """A message resource as Twilio's API renders it (RFC 2822 dates)."""
        now = format_datetime(record.at, usegmt=True).replace("GMT", "+0000")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{record.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": record.body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": record.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": record.sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": record.to,
            "uri": uri,
        }

    async def _account(self, request: web.Request) -> web.Response:
        if not self._authorized(request) or request.match_info["account"] != self.account_sid:
            return self._unexpected_error(request, "account fetch with wrong credentials", 401)
        self.account_fetches += 1
        return web.json_response({"sid": self.account_sid, "friendly_name": "fake", "status": "active",
                                  "type": "Full", "auth_token": "", "owner_account_sid": self.account_sid})

    async def _list_messages(self, request: web.Request) -> web.Response:
        """GET Messages.json: accepted messages, newest first, filtered by To/From like Twilio's list."""
        if not self._authorized(request):
            return self._unexpected_error(request, "bad or missing basic auth on Messages.json", 401)
        if request.match_info["account"] != self.account_sid:
            return self._unexpected_error(request, f"wrong account in path: {request.match_info['account']}")
        unknown = set(request.query) - {"To", "From", "PageSize", "Page", "PageToken"}
        if unknown:
            return self._unexpected_error(request, f"unexpected list filters: {sorted(unknown)}")
        self.list_requests.append(dict(request.query))
        to, from_ = request.query.get("To"), request.query.get("From")
        page_size = int(request.query.get("PageSize", "50"))
        found = [m for m in reversed(self.messages)
                 if m.sid and (to is None or m.to == to) and (from_ is None or m.from_ == from_)][:page_size]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        return web.json_response({
            "messages": [self._resource(m) for m in found],
            "end": max(len(found) - 1, 0), "first_page_uri": uri, "next_page_uri": None, "page": 0,
            "page_size": page_size, "previous_page_uri": None, "start": 0, "uri": uri,
        })

    async def _media_entry(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.media_requests.append(name)
        if not self._authorized(request):
            return self._unexpected_error(request, "media fetched without valid basic auth", 401)
        if name not in self._media:
            return web.json_response(
                {"code": 20404, "message": "The requested resource was not found", "status": 404}, status=404
            )
        token = secrets.token_hex(8)
        self._cdn_tokens[token] = name
        # Like Twilio, hand off to a CDN on another origin (localhost vs 127.0.0.1).
        raise web.HTTPTemporaryRedirect(self.base_url.replace("127.0.0.1", "localhost") + f"/cdn/{token}")

    async def _media_cdn(self, request: web.Request) -> web.StreamResponse:
        name = self._cdn_tokens.pop(request.match_info["token"], None)
        if name is None:
            return self._unexpected_error(request, "unknown or reused CDN token")
        if "Authorization" in request.headers:
            return self._unexpected_error(request, "account credentials leaked to the CDN")
        media = self._media[name]
        if media.send_length:
            return web.Response(body=media.data, content_type=media.content_type)
        response = web.StreamResponse(headers={"Content-Type": media.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(media.data), 32 * 1024):
            await response.write(media.data[start : start + 32 * 1024])
        await response.write_eof()
        return response

    async def _unexpected(self, request: web.Request) -> web.Response:
        return self._unexpected_error(request, f"unexpected {request.method} {request.path}")

    # --- helpers --------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _unexpected_error(self, request: web.Request, problem: str, status: int = 400) -> web.Response:
        self.errors.append(f"{request.method} {request.path}: {problem}")
        return web.json_response(
            {"code": 20001 if status == 400 else 20003, "message": problem, "more_info": "", "status": status},
            status=status,
        )


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form POST to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)
