"""Everything the composition root needs for the Twilio channel, built from settings in one place."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from channels.base import Ingress
from channels.twilio.inbound import STATUS_PATH, DeliveryStatusSink, TwilioWebhooks
from channels.twilio.media import MediaFetcher
from channels.twilio.outbound import TwilioSender, WindowLookup
from config.settings import Settings


class TwilioConfigError(ValueError):
    """Twilio is half-configured; the message names the missing setting."""


class MessageLog(WindowLookup, Protocol):
    """What the channel needs from the message store: window lookups."""


@dataclass
class TwilioChannel:
    sender: TwilioSender
    media: MediaFetcher
    auth_token: str
    public_url: str
    status_callback_url: str
    shared_keys: dict[str, str]

    def webhooks(self, ingress: Ingress, status_sink: DeliveryStatusSink) -> TwilioWebhooks:
        """``status_sink`` applies delivery reports (the worker layer's tracker, built by the root)."""
        return TwilioWebhooks(ingress, self.auth_token, self.public_url, self.media, status_sink,
                              status_callback_url=self.status_callback_url, shared_keys=self.shared_keys)

    async def close(self) -> None:
        try:
            await self.sender.close()
        finally:
            await self.media.close()


def twilio_channel_from_settings(settings: Settings, store: MessageLog) -> TwilioChannel | None:
    """The Twilio channel when an account is configured, else None (the channel is simply off)."""
    if not settings.twilio_account_sid and settings.twilio_auth_token is None:
        return None
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise TwilioConfigError("set both SUPPORTLAH_TWILIO_ACCOUNT_SID and SUPPORTLAH_TWILIO_AUTH_TOKEN")
    if not settings.public_url:
        raise TwilioConfigError("SUPPORTLAH_PUBLIC_URL is required: Twilio webhook signatures are checked against it")
    if not (settings.twilio_whatsapp_from or settings.twilio_sms_from):
        raise TwilioConfigError("set SUPPORTLAH_TWILIO_WHATSAPP_FROM and/or SUPPORTLAH_TWILIO_SMS_FROM")
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
    public_url = settings.public_url.rstrip("/")
    status_callback_url = settings.twilio_status_callback_url or public_url + STATUS_PATH
    sender = TwilioSender(
        sid,
        token,
        settings.twilio_whatsapp_from,
        settings.twilio_api_base_url,
        status_callback_url,
        settings.twilio_template_content_sid,
        store,
        sms_from=settings.twilio_sms_from,
        timeout_seconds=settings.twilio_send_timeout_seconds,
    )
    media = MediaFetcher(
        sid, token, settings.twilio_media_dir or settings.data_dir / "media", settings.twilio_media_max_bytes
    )
    shared_keys = {key_id: secret.get_secret_value() for key_id, secret in settings.twilio_webhook_shared_keys.items()}
    return TwilioChannel(sender=sender, media=media, auth_token=token, public_url=public_url,
                         status_callback_url=status_callback_url, shared_keys=shared_keys)
