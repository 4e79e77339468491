"""A local fake of the slice of Twilio's REST API we use: Messages, Content and media files.

It speaks the documented wire format (form POST with basic auth, 201 message
resource, ``{"code", "message", "more_info", "status"}`` error bodies) so the
real ``twilio`` SDK can be pointed at it with ``client.api.base_url`` (and
``client.content.base_url``). Every request and every answer is checked against
the Messages and Content fragments of Twilio's OpenAPI spec (:mod:`tests.fakes.twilio_spec`).
Anything it does not expect is answered 400 *and* recorded in
:attr:`FakeTwilioApi.errors`, which tests assert is empty.

It fails the way Twilio fails. Request errors come back on the create call (21211,
21610, 20429, 21655 unknown ContentSid, 21656 a ContentVariables value with a newline,
a tab or more than four spaces in a row, longer than 1,600 characters, or a rendered
template body over 1,024). Delivery errors do not: a free-form WhatsApp message to a
customer whose 24-hour window is closed (:meth:`FakeTwilioApi.close_window`) is accepted
``201 queued`` and its failure (63016) is reported later, in a signed status callback,
like :meth:`FakeTwilioApi.fail_delivery` (63003, 63024, 63018, …). Callbacks go to the
message's ``StatusCallback`` URL, signed over that URL, once :meth:`route_callbacks` says
where that public URL is served locally; :meth:`settle` waits for them.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_spec import MESSAGE_PATH, MESSAGES_PATH, request_problems, resource_problems

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
MAX_VARIABLE_CHARS = 1600  # Twilio: "a variable value can be up to 1,600 characters"
MAX_TEMPLATE_BODY_CHARS = 1024  # WhatsApp: a template's body, variables substituted
_BAD_VARIABLE = re.compile(r"[\n\t]| {5,}")


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
    status: str = "queued"
    error_code: int | None = None
    outcome: tuple[str, int | None] = ("delivered", None)  # the final state Twilio will report


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


FAILURES = {
    "429": _Failure(429, 20429, "Too Many Requests", {"Retry-After": "7"}),
    "500": _Failure(500, 20500, "Internal Server Error"),
    "21211": _Failure(400, 21211, "The 'To' number is not a valid phone number."),
    "21610": _Failure(400, 21610, "Attempt to send to unsubscribed recipient"),
}


@dataclass
class _Media:
    data: bytes
    content_type: str
    send_length: bool


# Delivery-time errors: reported in the status callback, never on the create call.
DELIVERY_ERRORS = {
    63016: "failed",  # outside the 24-hour window (free-form WhatsApp message)
    63003: "undelivered",  # channel could not find the To address
    63024: "undelivered",  # invalid message recipient
    63018: "failed",  # rate limit exceeded for the channel
    63032: "undelivered",  # user's number is part of an experiment
}


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
        self.contents: dict[str, str] = {}  # ContentSid -> template body with {{1}}-style placeholders
        self.content_fetches = 0
        self.message_fetches = 0
        self.callbacks: list[tuple[str, str, int]] = []  # (sid, MessageStatus, HTTP status we got)
        self.read_receipts = False  # report "read" after "delivered"
        self.callbacks_before_response = False  # post the callbacks before answering the create (a race)
        self._closed_windows: set[str] = set()
        self._delivery_failures: list[int] = []
        self._callback_route: tuple[str, str] | None = None
        self._callbacks_lost = 0
        self._signature: tuple[str, str] | None = None  # (shared key id, secret) for HMAC-SHA256
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create_message)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._list_messages)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json", self._fetch_message)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}.json", self._account)
        app.router.add_get("/v1/Content/{sid}", self._fetch_content)
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
        await self.settle()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- scripting ------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` message creates with a Twilio request error: 429, 500, 21211, 21610."""
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

    def add_content(self, content_sid: str, body: str) -> None:
        """An approved template (Content resource) whose body has ``{{1}}``-style variables."""
        self.contents[content_sid] = body

    def close_window(self, recipient: str) -> None:
        """The customer has not written for 24 hours: free-form messages to them fail with 63016."""
        self._closed_windows.add(recipient)

    def open_window(self, recipient: str) -> None:
        self._closed_windows.discard(recipient)

    def fail_delivery(self, code: int, times: int = 1) -> None:
        """The next ``times`` accepted messages are reported undelivered/failed with ``code``."""
        self._delivery_failures.extend([code] * times)

    def route_callbacks(self, public_prefix: str, local_base: str) -> None:
        """Status callbacks to URLs under ``public_prefix`` are posted to ``local_base`` + the rest."""
        self._callback_route = (public_prefix.rstrip("/"), local_base.rstrip("/"))

    def lose_callbacks(self, count: int = 1) -> None:
        """Twilio never resends a callback that did not arrive: the next ``count`` are not posted at all."""
        self._callbacks_lost += count

    def sign_with_shared_key(self, key_id: str, secret: str) -> None:
        """Sign callbacks with a webhook SharedKey (HMAC-SHA256, X-Twilio-Webhooks-Signature-Settings)."""
        self._signature = (key_id, secret)

    async def settle(self) -> None:
        """Wait until every scheduled status callback has been posted."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
        spec_problems = request_problems(MESSAGES_PATH, "post", [(k, v) for k, v in form.items()])
        if spec_problems:
            return self._unexpected_error(request, "; ".join(spec_problems))
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
        refusal = self._failures.pop(0) if self._failures else self._template_refusal(record)
        if refusal is not None:
            record.answered = refusal.status
            return web.json_response(
                {
                    "code": refusal.code,
                    "message": refusal.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{refusal.code}",
                    "status": refusal.status,
                },
                status=refusal.status,
                headers=refusal.headers,
            )
        sid = next(self._sids)
        record.sid, record.answered = sid, 201
        if content_sid:
            record.body = self._render(content_sid, json.loads(record.content_variables or "{}"))
        record.outcome = self._outcome(record)
        created = self._resource(record)  # "queued": what happened next is only ever reported later
        if self.callbacks_before_response:
            await self._report(record)
        else:
            self._spawn(self._report(record))
        if self._lost_responses or (self.drop_rate and self._rng.random() < self.drop_rate):
            # Accepted (it is sent and will be reported), but the connection closes before the 201:
            # the client cannot know the message went through.
            self._lost_responses = max(0, self._lost_responses - 1)
            self.lost_responses += 1
            record.answered = 0
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # aiohttp: the client went away, nothing is written
        return self._answer(created, "message", status=201)

    # --- templates and delivery -------------------------------------------------
    def _template_refusal(self, record: SentMessage) -> _Failure | None:
        """21655/21656 as Twilio answers them on the create call."""
        if not record.content_sid:
            return None
        if record.content_sid not in self.contents:
            return _Failure(400, 21655, "The ContentSid is Invalid")
        try:
            variables = json.loads(record.content_variables or "{}")
        except json.JSONDecodeError:
            return _Failure(400, 21656, "The ContentVariables Parameter is invalid")
        valid = isinstance(variables, dict) and all(
            isinstance(v, str) and v.strip() and not _BAD_VARIABLE.search(v) and len(v) <= MAX_VARIABLE_CHARS
            for v in variables.values())
        if not valid or len(self._render(record.content_sid, variables)) > MAX_TEMPLATE_BODY_CHARS:
            return _Failure(400, 21656, "The ContentVariables Parameter is invalid")
        return None

    def _render(self, content_sid: str, variables: dict[str, str]) -> str:
        """The body Twilio reports for a template send: the template with its variables substituted."""
        return re.sub(r"\{\{(\w+)\}\}", lambda m: variables.get(m.group(1), m.group(0)), self.contents[content_sid])

    def _outcome(self, record: SentMessage) -> tuple[str, int | None]:
        if self._delivery_failures:
            code = self._delivery_failures.pop(0)
            return DELIVERY_ERRORS.get(code, "undelivered"), code
        if record.to in self._closed_windows and record.content_sid is None and record.to.startswith("whatsapp:"):
            return "failed", 63016
        return "read" if self.read_receipts else "delivered", None

    def _spawn(self, coroutine) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, record: SentMessage) -> None:
        """Move the message to its outcome and post each step to its StatusCallback, as Twilio does."""
        final, code = record.outcome
        steps = ["sent", final] if code is None else [final]
        if final == "read":
            steps = ["sent", "delivered", "read"]
        for status in steps:
            record.status, record.error_code = status, code if status == final else None
            if record.status_callback and self._callback_route is not None:
                await self._post_callback(record)

    async def _post_callback(self, record: SentMessage) -> None:
        if self._callbacks_lost:
            self._callbacks_lost -= 1
            return
        public, local = self._callback_route or ("", "")
        url = record.status_callback or ""
        if not url.startswith(public):
            self.errors.append(f"StatusCallback {url!r} is not under the routed prefix {public!r}")
            return
        form = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": record.from_ or "",
                "To": record.to or "", "MessageSid": record.sid or "", "SmsSid": record.sid or "",
                "MessageStatus": record.status, "SmsStatus": record.status}
        if record.to and record.to.startswith("whatsapp:"):
            form["ChannelPrefix"] = "whatsapp"
        if record.error_code is not None:
            form["ErrorCode"] = str(record.error_code)
        headers = self.callback_headers(url, form)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(local + url[len(public):], data=form, headers=headers) as response:
            self.callbacks.append((record.sid or "", record.status, response.status))

    def callback_headers(self, url: str, form: dict[str, str]) -> dict[str, str]:
        """The signature headers Twilio sends with a webhook to ``url`` (SHA1 with the auth token,
        or HMAC-SHA256 with a SharedKey named in X-Twilio-Webhooks-Signature-Settings)."""
        if self._signature is None:
            return {"X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, form)}
        key_id, secret = self._signature
        signature = RequestValidator(secret).compute_signature(url, form, "HMAC_SHA256")
        return {"X-Twilio-Signature": signature,
                "X-Twilio-Webhooks-Signature-Settings": f"key={key_id},algorithm=HMAC_SHA256"}

    def _answer(self, body: dict, kind: str, *, status: int = 200) -> web.Response:
        """Every answer is checked against the spec before it leaves."""
        for problem in resource_problems(kind, body):
            self.errors.append(f"fake answered off-spec: {problem}")
        return web.json_response(body, status=status)

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
            "error_code": record.error_code,
            "error_message": None if record.error_code is None else f"Twilio error {record.error_code}",
            "from": record.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": record.sid,
            "status": record.status,
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
        spec_problems = request_problems(MESSAGES_PATH, "get", list(request.query.items()))
        if spec_problems:
            return self._unexpected_error(request, "; ".join(spec_problems))
        self.list_requests.append(dict(request.query))
        to, from_ = request.query.get("To"), request.query.get("From")
        page_size = int(request.query.get("PageSize", "50"))
        found = [m for m in reversed(self.messages)
                 if m.sid and (to is None or m.to == to) and (from_ is None or m.from_ == from_)][:page_size]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        return self._answer({
            "messages": [self._resource(m) for m in found],
            "end": max(len(found) - 1, 0), "first_page_uri": uri, "next_page_uri": None, "page": 0,
            "page_size": page_size, "previous_page_uri": None, "start": 0, "uri": uri,
        }, "list")

    async def _fetch_message(self, request: web.Request) -> web.Response:
        """GET Messages/{Sid}.json: the message as it stands now (status, error_code)."""
        if not self._authorized(request) or request.match_info["account"] != self.account_sid:
            return self._unexpected_error(request, "message fetch with wrong credentials", 401)
        if set(request.query):
            return self._unexpected_error(request, f"{MESSAGE_PATH} takes no query: {sorted(request.query)}")
        self.message_fetches += 1
        for record in self.messages:
            if record.sid == request.match_info["sid"]:
                return self._answer(self._resource(record), "message")
        return web.json_response({"code": 20404, "message": "The requested resource was not found",
                                  "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}, status=404)

    async def _fetch_content(self, request: web.Request) -> web.Response:
        """GET content.twilio.com/v1/Content/{Sid}: the template, so callers can see its body."""
        if not self._authorized(request):
            return self._unexpected_error(request, "content fetch without valid basic auth", 401)
        sid = request.match_info["sid"]
        self.content_fetches += 1
        if sid not in self.contents:
            return web.json_response({"code": 20404, "message": "The requested resource was not found",
                                      "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404},
                                     status=404)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._answer({
            "account_sid": self.account_sid, "date_created": now, "date_updated": now, "friendly_name": "reply",
            "language": "en", "links": {"approval_fetch": f"{self.base_url}/v1/Content/{sid}/ApprovalRequests"},
            "sid": sid, "types": {"twilio/text": {"body": self.contents[sid]}}, "url": f"{self.base_url}/v1/Content/{sid}",
            "variables": {"1": "reply"},
        }, "content")

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
