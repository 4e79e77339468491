"""Attachments before the agent: download them, transcribe voice notes, never drop one silently.

* Files are fetched from the provider (Twilio media URL, Telegram file id) into the data
  dir, type-checked by content and size-limited by the channel's fetcher.
* A voice note is transcribed when a transcriber is configured (an OpenAI-compatible endpoint,
  or Whisper on this machine with the ``voice`` extra), in the conversation's language when we
  know it; the transcript becomes the message's text, which the agent answers and staff see,
  and the answer starts with what was heard ("You asked: …"). A note over the length cap is
  declined politely; without a transcriber the customer is asked, in their language, to type.
* A photo or document without a question goes to a person (reason ``attachment``).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from agent.texts import text as canned_text
from agent.transcription import TranscriptionError, VoiceNoteTooLong
from config.types import Reply
from channels.media import MediaError
from channels.messages import Attachment, AttachmentKind, Channel, OutboundMessage
from memory.store import MessageStore, StoredMessage
from workers.hooks import Decision
from workers.queue import RetryLater

log = logging.getLogger(__name__)


class AttachmentFetcher(Protocol):
    async def fetch(self, attachment: Attachment) -> Attachment: ...


class Transcriber(Protocol):
    async def transcribe(self, path: Path, mime_type: str | None, *, language: str | None = None) -> str:
        """The words of the audio at ``path``; ``language`` (en, zh, ms, ta) when the conversation has one.
        Raises ``TranscriptionError`` (``VoiceNoteTooLong`` past the length cap)."""


TRANSCRIBED = "transcribed"  # message metadata: the text is what we heard in its voice note


def is_remote(attachment: Attachment) -> bool:
    return bool(attachment.url) and attachment.kind not in (AttachmentKind.LOCATION, AttachmentKind.CONTACT) \
        and not Path(attachment.url or "").is_absolute()


class MediaHook:
    def __init__(self, store: MessageStore, fetchers: dict[Channel, AttachmentFetcher],
                 transcriber: Transcriber | None = None) -> None:
        self._store = store
        self._fetchers = fetchers
        self._transcriber = transcriber

    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        message = stored.message
        if not message.attachments or message.metadata.get("staff") == "true":
            return None
        local = [await self._localize(message.channel, a) for a in message.attachments]
        if local != message.attachments:
            await self._store.update_attachments(message.id, local)
            message.attachments = local
        language = stored.conversation_language or "en"
        audio = [a for a in local if a.kind == AttachmentKind.AUDIO and a.url and Path(a.url).is_absolute()]
        if audio and not message.text.strip():
            if self._transcriber is None:
                return _reply(canned_text("voice_note", language), language, reason=None, answerer="voice_note")
            try:
                transcript = await self._transcribe(audio[0], stored.conversation_language)
            except VoiceNoteTooLong as exc:
                log.info("voice note over the length cap; declined", extra={"seconds": round(exc.seconds)})
                text = canned_text("voice_note_too_long", language, seconds=round(exc.seconds), limit=round(exc.limit))
                return _reply(text, language, reason=None, answerer="voice_note:too_long")
            if not transcript:
                return _reply(canned_text("voice_note_unclear", language), language, reason=None,
                              answerer="voice_note:unclear")
            await self._store.update_text(message.id, transcript, {TRANSCRIBED: "true"})
            message.text = transcript
            message.metadata[TRANSCRIBED] = "true"
            return None
        files = [a for a in local if a.kind in (AttachmentKind.IMAGE, AttachmentKind.DOCUMENT, AttachmentKind.VIDEO)]
        if files and not message.text.strip():
            return _reply(canned_text("handoff", language), language, reason="attachment", answerer="attachment")
        return None

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []

    def revise(self, stored: StoredMessage, reply: Reply) -> Reply:
        """The agent's answer to a voice note starts with what we heard, so a mis-hearing shows."""
        if stored.message.metadata.get(TRANSCRIBED) != "true" or not reply.text:
            return reply
        heard = canned_text("you_asked", reply.language, question=stored.message.text)
        return replace(reply, text=f"{heard}\n\n{reply.text}")

    async def _transcribe(self, audio: Attachment, language: str | None) -> str:
        assert self._transcriber is not None and audio.url
        try:
            return (await self._transcriber.transcribe(Path(audio.url), audio.mime_type, language=language)).strip()
        except VoiceNoteTooLong:
            raise
        except TranscriptionError as exc:
            if exc.retryable:
                raise RetryLater(f"transcription failed: {exc}", defer=10.0) from exc
            log.warning("voice note could not be transcribed; asking the customer to type", exc_info=True)
            return ""

    async def _localize(self, channel: Channel, attachment: Attachment) -> Attachment:
        fetcher = self._fetchers.get(channel)
        if fetcher is None or not is_remote(attachment):
            return attachment
        try:
            return await fetcher.fetch(attachment)
        except MediaError as exc:
            if exc.retryable:
                raise RetryLater(f"media download failed: {exc}", defer=5.0) from exc
            # Too large, wrong type, gone: keep a record of what was refused, and carry on without it.
            log.warning("attachment refused", extra={"reason": type(exc).__name__, "kind": attachment.kind.value})
            return attachment.model_copy(update={"url": None, "name": f"refused: {exc}"[:200]})


def _reply(text: str, language: str, *, reason: str | None, answerer: str) -> Decision:
    return Decision(reply=Reply(text=text, language=language, confidence=1.0, escalate=reason is not None,
                                reason=reason, backend={"answerer": answerer}))
