"""WhatsApp's length limit: Twilio refuses bodies over 1,600 characters (UTF-16 units)."""
from __future__ import annotations

from channels.splitting import split_text, text_length

WHATSAPP_MAX_CHARS = 1600

__all__ = ["WHATSAPP_MAX_CHARS", "split_for_whatsapp", "text_length"]


def split_for_whatsapp(text: str, limit: int = WHATSAPP_MAX_CHARS) -> list[str]:
    """Ordered parts of at most ``limit`` units; short text comes back as one part."""
    return split_text(text, limit)
