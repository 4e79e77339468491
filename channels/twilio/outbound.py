"""Send replies through Twilio's Messages API (WhatsApp and plain SMS).

One :meth:`TwilioSender.send` is one provider message: the worker splits long
replies with :func:`split_for_whatsapp` and records each part with its own
idempotency key, so this class never splits, truncates or retries by itself.
WhatsApp only allows free-form text within 24 hours of the customer's last
message; outside that window we send the configured approved template instead.

Twilio *accepts* a free-form message outside the window (201 ``queued``) and reports
63016 later, in the status callback, like every delivery-time error: our window
estimate decides what we try first, the provider's report decides what happened
(:func:`delivery_problem`; the resend as a template is the worker's job). A part that
carries ``send_as=template`` goes out as the template whatever the estimate says.

The template's single variable must be valid for WhatsApp (no newline, no tab, no run
of more than four spaces; Twilio answers 21656 otherwise) and short enough that the
rendered body stays within WhatsApp's 1,024 characters, so :func:`template_variable`
folds and cuts the reply; the template's own text comes from its Content resource.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.base import (
    SEND_AS,
    TEMPLATE,
    AmbiguousSendError,
    ChannelError,
    DeliveryProblem,
    DeliveryReport,
    OutsideWindowError,
    PermanentChannelError,
    ProviderRecord,
    RecipientUnreachable,
    TransientChannelError,
)
from channels.messages import Channel, DeliveryReceipt, OutboundMessage, utcnow
from channels.twilio.splitting import WHATSAPP_MAX_CHARS, split_for_whatsapp, text_length

__all__ = ["MessageTooLongError", "TwilioSender", "WindowLookup", "delivery_problem", "split_for_whatsapp",
           "template_variable"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

WHATSAPP_PREFIX = "whatsapp:"
SESSION_WINDOW = timedelta(hours=24)
TEMPLATE_VARIABLE_MAX_CHARS = 1600  # Twilio: a variable value can be up to 1,600 characters
TEMPLATE_BODY_MAX_CHARS = 1024  # WhatsApp: a template body with its variables substituted
TEMPLATE_PLACEHOLDER = "{{1}}"
_UNFOLDED = re.compile(r"\s*[\r\n\t\v\f]\s*| {5,}")  # what WhatsApp refuses in a variable (21656)

# Each code as Twilio's error pages describe it. Request errors come back on the create call:
OUTSIDE_WINDOW_CODE = 63016  # (delivery-time: only ever in a status callback)
# the contact itself cannot be reached: invalid/non-mobile number, unsubscribed (STOP), not SMS-capable.
UNREACHABLE_CODES = frozenset({21211, 21214, 21610, 21612, 21614})
RATE_LIMIT_CODES = frozenset({20429})  # Too Many Requests (HTTP 429)
NOT_FOUND_CODE = "20404"
# Delivery-time errors, reported in the status callback after a 201:
UNDELIVERABLE_CODES = frozenset({63003, 63024})  # channel could not find the To address; invalid recipient
DELIVERY_RATE_LIMIT_CODES = frozenset({63018, 14107})  # rate limit exceeded for the channel / between two numbers


def delivery_problem(error_code: str | None) -> DeliveryProblem:
    """What a failed/undelivered status callback's ``ErrorCode`` means for us."""
    try:
        code = int(error_code or "")
    except ValueError:
        return DeliveryProblem.OTHER
    if code == OUTSIDE_WINDOW_CODE:
        return DeliveryProblem.OUTSIDE_WINDOW
    if code in UNDELIVERABLE_CODES or code in UNREACHABLE_CODES:
        return DeliveryProblem.UNREACHABLE
    if code in DELIVERY_RATE_LIMIT_CODES or code in RATE_LIMIT_CODES:
        return DeliveryProblem.RATE_LIMITED
    return DeliveryProblem.OTHER


def template_variable(text: str, max_chars: int) -> str:
    """``text`` as a valid WhatsApp template variable of at most ``max_chars`` characters.

    Line breaks, tabs and runs of spaces become one space (WhatsApp refuses them in a
    variable); a longer text is cut at a word boundary and ends with an ellipsis.
    """
    folded = _UNFOLDED.sub(" ", text).strip()
    if len(folded) <= max_chars:
        return folded
    cut = folded[: max(max_chars - 1, 1)]
    if " " in cut[len(cut) // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


class WindowLookup(Protocol):
    """When the customer last wrote to us on this channel (None: never)."""

    async def last_inbound_at(self, channel: Channel, recipient_id: str) -> datetime | None: ...


class MessageTooLongError(PermanentChannelError):
    """A single part exceeds the provider limit; split with ``split_for_whatsapp`` first."""


@dataclass
class _ResponseMeta:
    """Filled by the aiohttp trace hook: the SDK's exception drops response headers."""

    retry_after: str | None = None


class TwilioSender:
    """:class:`channels.base.OutboundSender` for WhatsApp (``whatsapp:+…``) and SMS (``+…``) recipients."""

    channel = Channel.WHATSAPP

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_whatsapp: str | None,
        api_base_url: str | None,
        status_callback_url: str | None,
        template_content_sid: str | None,
        window: WindowLookup,
        *,
        sms_from: str | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from_whatsapp = _with_prefix(from_whatsapp) if from_whatsapp else None
        self._sms_from = sms_from
        self._api_base_url = api_base_url
        self._status_callback_url = status_callback_url
        self._template_content_sid = template_content_sid
        self._window = window
        self._timeout_seconds = timeout_seconds
        self._response_meta: contextvars.ContextVar[_ResponseMeta | None] = contextvars.ContextVar(
            "twilio_response_meta", default=None
        )
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None
        self._template_body: str | None = None

    @property
    def has_template(self) -> bool:
        """Whether a reply refused for a closed window can be resent as the approved template."""
        return self._template_content_sid is not None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        text = message.text.strip()
        if not text:
            raise PermanentChannelError("refusing to send an empty message", code="empty")
        if text_length(text) > WHATSAPP_MAX_CHARS:
            raise MessageTooLongError(
                f"part is {text_length(text)} chars; Twilio allows {WHATSAPP_MAX_CHARS} — split it first",
                code="too_long",
            )
        recipient = message.recipient_id
        if not recipient.startswith(WHATSAPP_PREFIX):
            return await self._send_sms(recipient, text)
        if not self._from_whatsapp:
            raise PermanentChannelError("no WhatsApp sender configured (SUPPORTLAH_TWILIO_WHATSAPP_FROM)")
        if message.metadata.get(SEND_AS) == TEMPLATE:
            logger.info("twilio.window_closed_by_provider", extra={"outbound_id": message.id})
            return await self._send_template(recipient, text)
        if not await self._window_open(message.channel, recipient):
            logger.info("twilio.window_closed", extra={"outbound_id": message.id})
            return await self._send_template(recipient, text)
        return await self._create(to=recipient, from_=self._from_whatsapp, body=text)

    async def is_same_message(self, message: OutboundMessage, record: ProviderRecord) -> bool:
        """Could ``record`` (from :meth:`recent_sends`) be this part? Twilio's ``body`` is our text for
        a free-form send and the rendered template (our folded, cut text in it) for a template send."""
        body, text = record.body.strip(), message.text.strip()
        if body == text:
            return True
        if not (self.has_template and message.recipient_id.startswith(WHATSAPP_PREFIX)):
            return False
        return body == (await self._render_template(text)).strip()

    async def delivery_report(self, provider_message_id: str) -> DeliveryReport:
        """The message resource as Twilio holds it now: for a part whose status callback never came."""
        found = await self._call("a message fetch", self._ensure_client().messages(provider_message_id).fetch_async())
        status = str(found.status or "queued")
        error_code = str(found.error_code) if found.error_code else None
        problem = delivery_problem(error_code) if status in ("failed", "undelivered") else None
        return DeliveryReport(Channel.WHATSAPP, provider_message_id, status, error_code, problem)

    async def reachable(self) -> bool:
        """Readiness probe: Twilio answers for our account (GET Accounts/{sid}.json)."""
        async with asyncio.timeout(self._timeout_seconds):
            await self._ensure_client().api.v2010.accounts(self._account_sid).fetch_async()
        return True

    async def recent_sends(self, recipient_id: str, since: datetime) -> list[ProviderRecord]:
        """Messages Twilio accepted for this recipient since ``since`` (newest pages first).

        Used only to reconcile a part a dead worker left in flight, so one page is plenty.
        """
        sender = self._from_whatsapp if recipient_id.startswith(WHATSAPP_PREFIX) else self._sms_from
        found = await self._call("a message list",
                                 self._ensure_client().messages.list_async(to=recipient_id, from_=sender, limit=50))
        return [
            ProviderRecord(provider_message_id=m.sid, body=m.body or "", created_at=m.date_created)
            for m in found
            if m.sid and m.date_created is not None and m.date_created >= since
        ]

    async def close(self) -> None:
        if self._http is not None:
            http, self._http, self._client = self._http, None, None
            await http.close()

    async def _send_sms(self, recipient: str, text: str) -> DeliveryReceipt:
        if not self._sms_from:
            raise PermanentChannelError("no SMS sender configured (SUPPORTLAH_TWILIO_SMS_FROM)", code="no_sms_from")
        return await self._create(to=recipient, from_=self._sms_from, body=text)

    async def _send_template(self, recipient: str, text: str) -> DeliveryReceipt:
        if not self._template_content_sid:
            raise OutsideWindowError(
                "WhatsApp 24-hour window is closed and no template is configured "
                "(SUPPORTLAH_TWILIO_TEMPLATE_CONTENT_SID)",
                code=str(OUTSIDE_WINDOW_CODE),
            )
        variables = json.dumps({"1": await self._variable_for(text)}, ensure_ascii=False)
        return await self._create(
            to=recipient,
            from_=self._from_whatsapp,
            content_sid=self._template_content_sid,
            content_variables=variables,
        )

    async def _variable_for(self, text: str) -> str:
        """The reply folded and cut so that the rendered template fits WhatsApp's 1,024 characters."""
        template = await self._fetch_template_body()
        room = TEMPLATE_BODY_MAX_CHARS - len(template.replace(TEMPLATE_PLACEHOLDER, ""))
        return template_variable(text, max(1, min(room, TEMPLATE_VARIABLE_MAX_CHARS)))

    async def _render_template(self, text: str) -> str:
        """The body Twilio will report for this text sent as the template."""
        template = await self._fetch_template_body()
        return template.replace(TEMPLATE_PLACEHOLDER, await self._variable_for(text))

    async def _fetch_template_body(self) -> str:
        """The template's text from its Content resource (fetched once: templates are immutable once approved)."""
        if self._template_body is not None:
            return self._template_body
        sid = self._template_content_sid or ""
        try:
            content = await self._call("a content fetch", self._ensure_client().content.v1.contents(sid).fetch_async())
        except PermanentChannelError as exc:
            if exc.code != NOT_FOUND_CODE:
                raise
            raise PermanentChannelError(f"template {sid} does not exist (SUPPORTLAH_TWILIO_TEMPLATE_CONTENT_SID)",
                                        code="21655") from exc
        bodies = [kind.get("body") for kind in (content.types or {}).values() if isinstance(kind, dict)]
        body = next((b for b in bodies if isinstance(b, str) and TEMPLATE_PLACEHOLDER in b), None)
        if body is None:
            raise PermanentChannelError(f"template {sid} has no body with a {TEMPLATE_PLACEHOLDER} variable",
                                        code="template_unusable")
        self._template_body = body
        return body

    async def _window_open(self, channel: Channel, recipient: str) -> bool:
        last = await self._window.last_inbound_at(channel, recipient)
        return last is not None and utcnow() - last < SESSION_WINDOW

    async def _create(self, **params: Any) -> DeliveryReceipt:
        if self._status_callback_url:
            params["status_callback"] = self._status_callback_url
        meta = _ResponseMeta()
        token = self._response_meta.set(meta)
        try:
            resource = await self._call("a message create", self._ensure_client().messages.create_async(**params),
                                        meta, creates=True)
        finally:
            self._response_meta.reset(token)
        logger.info("twilio.sent", extra={"provider_message_id": resource.sid, "status": resource.status})
        return DeliveryReceipt(provider_message_id=resource.sid, status=str(resource.status or "queued"))

    async def _call(self, what: str, request: Awaitable[T], meta: _ResponseMeta | None = None, *,
                    creates: bool = False) -> T:
        """One Twilio request within the timeout, its failures mapped to our ChannelError family.

        ``creates``: the request sends something. A timeout or a connection dropped after the request
        went out then leaves its fate unknown (Twilio may have accepted it): ``AmbiguousSendError``, so
        the part is reconciled before any resend. Only a connection that never opened is safe to retry.
        """
        try:
            async with asyncio.timeout(self._timeout_seconds):
                return await request
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _map_api_error(exc, meta.retry_after if meta else None) from exc
        except TimeoutError as exc:
            message = f"Twilio did not answer {what} within {self._timeout_seconds}s"
            if creates:
                raise AmbiguousSendError(message, code="timeout") from exc
            raise TransientChannelError(message, code="timeout") from exc
        except aiohttp.ClientConnectorError as exc:  # no connection, so no request: safe to send again
            raise TransientChannelError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from exc
        except (aiohttp.ClientError, OSError) as exc:
            if creates:  # dropped after the request was written
                raise AmbiguousSendError(f"Twilio connection lost before its answer: {type(exc).__name__}",
                                         code="no_response") from exc
            raise TransientChannelError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from exc

    def _ensure_client(self) -> Client:
        """Build the SDK client on first use, inside the running loop (aiohttp needs one)."""
        if self._client is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(self._remember_response)
            self._http = AsyncTwilioHttpClient(trace_configs=[trace])
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
            if self._api_base_url:
                self._client.api.base_url = self._api_base_url.rstrip("/")
                self._client.content.base_url = self._api_base_url.rstrip("/")
        return self._client

    async def _remember_response(self, _session: Any, _ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        meta = self._response_meta.get()
        if meta is not None:
            meta.retry_after = params.response.headers.get("Retry-After")


def _map_api_error(exc: TwilioRestException | TwilioServiceException, retry_after: str | None) -> ChannelError:
    status = int(exc.status or 0)
    code = int(exc.code) if exc.code is not None else None
    code_text = str(code) if code is not None else str(status)
    detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    message = f"Twilio {status} (code {code_text}): {detail}"
    if status == 429 or code in RATE_LIMIT_CODES or status >= 500:
        return TransientChannelError(message, code=code_text, retry_after=_parse_retry_after(retry_after))
    if code == OUTSIDE_WINDOW_CODE:
        return OutsideWindowError(message, code=code_text)
    if code in UNREACHABLE_CODES:
        return RecipientUnreachable(message, code=code_text)
    return PermanentChannelError(message, code=code_text)


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        logger.warning("twilio.bad_retry_after", extra={"retry_after": value})
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - utcnow()).total_seconds())


def _with_prefix(number: str) -> str:
    return number if number.startswith(WHATSAPP_PREFIX) else f"{WHATSAPP_PREFIX}{number}"
