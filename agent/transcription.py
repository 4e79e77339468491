"""Speech to text for voice notes through any OpenAI-compatible audio API (``/v1/audio/transcriptions``)."""
from __future__ import annotations

import asyncio
from pathlib import Path


class TranscriptionError(Exception):
    """The speech-to-text service failed; ``retryable`` says whether a later attempt may work."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class OpenAITranscriber:
    def __init__(self, *, base_url: str, api_key: str, model: str, timeout: float = 60.0) -> None:
        from openai import AsyncOpenAI  # only when speech to text is configured: start-up stays quick

        # The worker retries whole jobs with backoff; the SDK's own retries would double that.
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=0)
        self._model = model

    async def transcribe(self, path: Path, mime_type: str | None) -> str:
        import openai

        data = await asyncio.to_thread(path.read_bytes)
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model, file=(path.name, data, mime_type or "application/octet-stream")
            )
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            raise TranscriptionError(f"speech-to-text unavailable: {type(exc).__name__}", retryable=True) from exc
        except openai.APIError as exc:
            raise TranscriptionError(f"speech-to-text refused the audio: {type(exc).__name__}", retryable=False) from exc
        return result.text

    async def close(self) -> None:
        await self._client.close()
