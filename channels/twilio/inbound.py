"""Twilio webhooks: incoming WhatsApp/SMS messages and delivery status callbacks.

The webhook must answer fast and only after the message is durable, so it
verifies the signature, normalizes the form into an :class:`InboundMessage`,
hands it to the :class:`Ingress` and returns empty TwiML. Media is downloaded
later by the worker (see :mod:`channels.twilio.media`); replies go out through
the REST API, never in the TwiML response.
"""
from __future__ import annotations

import hmac
import logging
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from channels.base import DeliveryReport, Ingress
from channels.edge import MalformedInbound, checked_inbound
from channels.messages import Attachment, AttachmentKind, Channel, InboundMessage
from channels.media import attachment_kind_for
from channels.twilio.media import MediaFetcher
from channels.twilio.outbound import delivery_problem

__all__ = ["DeliveryStatusSink", "MalformedPayload", "TwilioWebhooks", "parse_inbound_form"]

logger = logging.getLogger(__name__)

WHATSAPP_PATH = "/webhooks/twilio/whatsapp"
STATUS_PATH = "/webhooks/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_MEDIA_ITEMS = 10  # WhatsApp/MMS deliver at most 10 media per message
MAX_BODY_CHARS = 1600  # the longest message body Twilio delivers


class DeliveryStatusSink(Protocol):
    """Records provider delivery reports (queued, sent, delivered, read, failed, undelivered)."""

    async def record_delivery(self, report: DeliveryReport) -> bool:
        """Apply (or, for a message id not recorded yet, keep) one report; True if its part is known."""


class MalformedPayload(MalformedInbound):
    """The form lacks what every Twilio message webhook carries."""


class TwilioWebhooks:
    """aiohttp handlers for Twilio's message and status webhooks."""

    def __init__(
        self,
        ingress: Ingress,
        auth_token: str,
        public_url: str,
        media: MediaFetcher,
        status_sink: DeliveryStatusSink,
        *,
        status_callback_url: str | None = None,
        shared_keys: dict[str, str] | None = None,
    ) -> None:
        self._ingress = ingress
        self._validator = RequestValidator(auth_token)
        # Webhooks signed with a SharedKey name it in X-Twilio-Webhooks-Signature-Settings (key=<id>).
        self._shared_keys = {key_id: RequestValidator(secret) for key_id, secret in (shared_keys or {}).items()}
        self._public_url = public_url.rstrip("/")
        # Twilio signs a status callback over the URL we gave it, which may be on another host or prefix.
        self._status_url = status_callback_url or self._public_url + STATUS_PATH
        self.media = media  # exposed so the composition root hands one fetcher to both webhook and worker
        self._status_sink = status_sink

    def routes(self) -> list[web.RouteDef]:
        return [web.post(WHATSAPP_PATH, self.whatsapp), web.post(STATUS_PATH, self.status)]

    async def whatsapp(self, request: web.Request) -> web.Response:
        form = await self._verified_form(request)
        try:
            message = parse_inbound_form(form)
        except MalformedPayload as exc:
            logger.warning("twilio.malformed_inbound", extra={"reason": str(exc)})
            raise web.HTTPBadRequest(text=str(exc)) from exc
        result = await self._ingress.accept(message)
        logger.debug(  # the ingress logs the acceptance at info; this adds the provider's view
            "twilio.inbound_accepted",
            extra={
                "message_id": result.message_id,
                "provider_message_id": message.provider_message_id,
                "duplicate": result.duplicate,
                "transport": message.metadata["transport"],
                "attachments": len(message.attachments),
            },
        )
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def status(self, request: web.Request) -> web.Response:
        form = await self._verified_form(request)
        sid = form.get("MessageSid", "").strip()
        status = form.get("MessageStatus", "").strip().lower()
        if not sid or not status:
            raise web.HTTPBadRequest(text="status callback needs MessageSid and MessageStatus")
        error_code = form.get("ErrorCode", "").strip() or None
        failed = status in ("failed", "undelivered")
        report = DeliveryReport(Channel.WHATSAPP, sid, status, error_code,
                                delivery_problem(error_code) if failed else None)
        known = await self._status_sink.record_delivery(report)  # kept for later when the sid is not known yet
        logger.info(
            "twilio.status",
            extra={"provider_message_id": sid, "status": status, "error_code": error_code, "known": known},
        )
        return web.Response(status=204)

    async def _verified_form(self, request: web.Request) -> MultiDictProxy[str]:
        """Parse the form and check Twilio's signature over the URL Twilio called (not the proxy's view of it)."""
        try:
            form = await request.post()
        except (UnicodeDecodeError, LookupError, ValueError) as exc:  # bad bytes, unknown charset
            logger.warning("twilio.unreadable_form", extra={"path": request.path, "error": type(exc).__name__})
            raise web.HTTPBadRequest(text=f"unreadable form: {type(exc).__name__}") from exc
        text_form = MultiDictProxy(MultiDict(_text_only(form)))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        url = self._called_url(request)
        if not signature or not self._signed(url, text_form, signature, request.headers.get(SIGNATURE_SETTINGS_HEADER)):
            logger.warning("twilio.bad_signature", extra={"path": request.path, "has_signature": bool(signature)})
            raise web.HTTPForbidden(text="invalid Twilio signature")
        return text_form

    def _called_url(self, request: web.Request) -> str:
        """The URL Twilio signed: the configured status-callback URL for callbacks (its own host and
        path, with the query Twilio sent), the public URL + path for everything else."""
        if request.path != STATUS_PATH:
            return self._public_url + request.path_qs
        scheme, netloc, path, query, _ = urlsplit(self._status_url)
        return urlunsplit((scheme, netloc, path, request.query_string or query, ""))

    def _signed(self, url: str, form: MultiDictProxy[str], signature: str, settings: str | None) -> bool:
        """Every variant the SDK's RequestValidator accepts: HMAC-SHA1 with the auth token, or the
        algorithm and SharedKey named in X-Twilio-Webhooks-Signature-Settings. One HMAC over the URL
        exactly as configured is the common case; only on a mismatch do we pay for the SDK's full
        check, which also tries the URL with/without its port."""
        algorithm = get_signature_algorithm(settings)
        validator = self._validator
        if settings:
            key_id = next((part.partition("=")[2].strip() for part in settings.split(",")
                           if part.partition("=")[0].strip() == "key"), "")
            validator = self._shared_keys.get(key_id) or (self._validator if algorithm == HMAC_SHA1 else None)
            if validator is None:
                logger.warning("twilio.unknown_signing_key", extra={"algorithm": algorithm})
                return False
        try:
            expected = validator.compute_signature(url, form, algorithm)
        except ValueError:  # an algorithm this SDK does not know: validate() logs and refuses it
            return validator.validate(url, form, signature, algorithm)
        return hmac.compare_digest(expected, signature) or validator.validate(url, form, signature, algorithm)


def parse_inbound_form(form: MultiDictProxy[str]) -> InboundMessage:
    """Normalize one Twilio message webhook (WhatsApp or SMS) into an :class:`InboundMessage`."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    sender = form.get("From", "").strip()
    missing = [name for name, value in (("MessageSid", sid), ("From", sender)) if not value]
    if missing:
        raise MalformedPayload(f"missing {', '.join(missing)}")
    transport = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    body = form.get("Body", "")
    button_payload = form.get("ButtonPayload", "")
    metadata = {"to": form.get("To", ""), "transport": transport}
    optional = {
        "wa_id": "WaId",
        "button_payload": "ButtonPayload",
        "button_text": "ButtonText",
        "message_type": "MessageType",
        "latitude": "Latitude",
        "longitude": "Longitude",
        "address": "Address",
        "label": "Label",
    }
    for key, field in optional.items():
        if form.get(field):
            metadata[key] = form[field]
    message = InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id=sid,
        sender_id=sender,
        sender_name=form.get("ProfileName") or None,
        text=body if body.strip() else button_payload,
        attachments=_media(form) + _location(form),
        reply_to=form.get("OriginalRepliedMessageSid") or None,
        metadata=metadata,
    )
    try:  # NUL and control characters dropped, text capped, ids that cannot be stored refused
        return checked_inbound(message, max_text_chars=MAX_BODY_CHARS)
    except MalformedInbound as exc:
        raise MalformedPayload(str(exc)) from exc


def _media(form: MultiDictProxy[str]) -> list[Attachment]:
    raw = form.get("NumMedia", "0").strip() or "0"
    try:
        count = int(raw)
    except ValueError as exc:
        raise MalformedPayload(f"NumMedia is not a number: {raw[:20]!r}") from exc
    if not 0 <= count <= MAX_MEDIA_ITEMS:
        raise MalformedPayload(f"NumMedia out of range: {count}")
    attachments = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}", "").strip()
        if not url:
            raise MalformedPayload(f"NumMedia is {count} but MediaUrl{index} is missing")
        mime = form.get(f"MediaContentType{index}") or None
        attachments.append(Attachment(kind=attachment_kind_for(mime), mime_type=mime, url=url))
    return attachments


def _location(form: MultiDictProxy[str]) -> list[Attachment]:
    latitude, longitude = form.get("Latitude", "").strip(), form.get("Longitude", "").strip()
    if not latitude and not longitude:
        return []
    try:
        lat, lng = float(latitude), float(longitude)
    except ValueError as exc:
        raise MalformedPayload("Latitude/Longitude must both be numbers") from exc
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise MalformedPayload("Latitude/Longitude out of range")
    name = form.get("Label") or form.get("Address") or None
    return [Attachment(kind=AttachmentKind.LOCATION, url=f"geo:{latitude},{longitude}", name=name)]


def _text_only(form: MultiDictProxy) -> list[tuple[str, str]]:
    """Twilio posts url-encoded text; a file part here would be an attack, and is dropped (fails the signature)."""
    return [(key, value) for key, value in form.items() if isinstance(value, str)]
