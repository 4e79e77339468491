"""Send replies through Twilio's Messages API (WhatsApp and plain SMS).

One :meth:`TwilioSender.send` is one provider message: the worker splits long
replies with :func:`split_for_whatsapp` and records each part with its own
idempotency key, so this class never splits, truncates or retries by itself.
WhatsApp only allows free-form text within 24 hours of the customer's last
message; outside that window we send the configured approved template instead.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.base import (
    AmbiguousSendError,
    ChannelError,
    OutsideWindowError,
    PermanentChannelError,
    ProviderRecord,
    RecipientUnreachable,
    TransientChannelError,
)
from channels.messages import Channel, DeliveryReceipt, OutboundMessage, utcnow
from channels.twilio.splitting import WHATSAPP_MAX_CHARS, split_for_whatsapp, text_length

__all__ = ["MessageTooLongError", "TwilioSender", "WindowLookup", "split_for_whatsapp"]

logger = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
SESSION_WINDOW = timedelta(hours=24)
TEMPLATE_VARIABLE_MAX_CHARS = 900

OUTSIDE_WINDOW_CODE = 63016
# The contact itself cannot be reached: invalid/non-mobile number, unsubscribed (STOP),
# not on WhatsApp, invalid recipient. Retrying never helps; staff should see it.
UNREACHABLE_CODES = frozenset({21211, 21214, 21610, 21612, 21614, 63003, 63024})
# Channel-level throttling that Twilio reports with a 4xx status.
RATE_LIMIT_CODES = frozenset({20429, 63018})


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
        if not await self._window_open(message.channel, recipient):
            logger.info("twilio.window_closed", extra={"outbound_id": message.id})
            return await self._send_template(recipient, text)
        try:
            return await self._create(to=recipient, from_=self._from_whatsapp, body=text)
        except OutsideWindowError:
            logger.info("twilio.window_closed_by_provider", extra={"outbound_id": message.id})
            return await self._send_template(recipient, text)

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
        try:
            async with asyncio.timeout(self._timeout_seconds):
                found = await self._ensure_client().messages.list_async(to=recipient_id, from_=sender, limit=50)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _map_api_error(exc, None) from exc
        except TimeoutError as exc:
            raise TransientChannelError("Twilio did not answer a message list in time", code="timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientChannelError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from exc
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
        variables = json.dumps({"1": text[:TEMPLATE_VARIABLE_MAX_CHARS]}, ensure_ascii=False)
        return await self._create(
            to=recipient,
            from_=self._from_whatsapp,
            content_sid=self._template_content_sid,
            content_variables=variables,
        )

    async def _window_open(self, channel: Channel, recipient: str) -> bool:
        last = await self._window.last_inbound_at(channel, recipient)
        return last is not None and utcnow() - last < SESSION_WINDOW

    async def _create(self, **params: Any) -> DeliveryReceipt:
        if self._status_callback_url:
            params["status_callback"] = self._status_callback_url
        meta = _ResponseMeta()
        token = self._response_meta.set(meta)
        try:
            async with asyncio.timeout(self._timeout_seconds):
                resource = await self._ensure_client().messages.create_async(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _map_api_error(exc, meta.retry_after) from exc
        except TimeoutError as exc:  # the request went out: Twilio may have accepted it
            message = f"Twilio did not answer within {self._timeout_seconds}s"
            raise AmbiguousSendError(message, code="timeout") from exc
        except aiohttp.ClientConnectorError as exc:  # no connection, so no request: safe to send again
            raise TransientChannelError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from exc
        except (aiohttp.ClientError, OSError) as exc:  # dropped after the request was written
            raise AmbiguousSendError(f"Twilio connection lost before its answer: {type(exc).__name__}",
                                     code="no_response") from exc
        finally:
            self._response_meta.reset(token)
        logger.info("twilio.sent", extra={"provider_message_id": resource.sid, "status": resource.status})
        return DeliveryReceipt(provider_message_id=resource.sid, status=str(resource.status or "queued"))

    def _ensure_client(self) -> Client:
        """Build the SDK client on first use, inside the running loop (aiohttp needs one)."""
        if self._client is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(self._remember_response)
            self._http = AsyncTwilioHttpClient(trace_configs=[trace])
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
            if self._api_base_url:
                self._client.api.base_url = self._api_base_url.rstrip("/")
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
