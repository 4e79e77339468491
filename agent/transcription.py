"""Speech to text for voice notes: the errors every transcriber raises, and the OpenAI-compatible
audio API (``/v1/audio/transcriptions``). The on-machine Whisper transcriber is in ``local_transcription``."""
from __future__ import annotations

import asyncio
from pathlib import Path


class TranscriptionError(Exception):
    """The speech-to-text service failed; ``retryable`` says whether a later attempt may work."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class VoiceNoteTooLong(TranscriptionError):
    """The voice note is longer than we transcribe (``SUPPORTLAH_STT_MAX_SECONDS``); the customer is told."""

    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"voice note is {seconds:.0f} s long; the limit is {limit:.0f} s", retryable=False)
        self.seconds = seconds
        self.limit = limit


class OpenAITranscriber:
    def __init__(self, *, base_url: str, api_key: str, model: str, timeout: float = 60.0) -> None:
        from openai import AsyncOpenAI  # only when speech to text is configured: start-up stays quick

        # The worker retries whole jobs with backoff; the SDK's own retries would double that.
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=0)
        self._model = model

    async def transcribe(self, path: Path, mime_type: str | None, *, language: str | None = None) -> str:
        """``language`` (ISO 639-1, the conversation's) is passed on when known; the service detects it otherwise."""
        import openai

        data = await asyncio.to_thread(path.read_bytes)
        extra = {"language": language} if language else {}
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model, file=(path.name, data, mime_type or "application/octet-stream"), **extra
            )
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            raise TranscriptionError(f"speech-to-text unavailable: {type(exc).__name__}", retryable=True) from exc
        except openai.APIError as exc:
            raise TranscriptionError(f"speech-to-text refused the audio: {type(exc).__name__}", retryable=False) from exc
        return result.text

    async def close(self) -> None:
        await self._client.close()
