"""A thin wrapper over any OpenAI-compatible chat-completions API (OpenAI, Azure, Ollama, vLLM).

Every call is streamed, so web chat can show the answer as it is written and one
code path serves every channel. The wrapper collects content and tool-call
fragments into a :class:`ChatResult`, reads token usage from the final chunk (or
counts it with tiktoken when a server does not report it), and maps every SDK
failure to :class:`LLMError` with a ``kind`` the agent decides on. The SDK's own
retries are off: the agent retries once itself, then falls back.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rag.tokens import TokenCounter

if TYPE_CHECKING:  # the SDK is imported by whoever builds a client: agents without a model start faster
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

ContentSink = Callable[[str], Awaitable[None]]
MESSAGE_OVERHEAD = 4  # tokens a chat API adds per message (role and separators)


class LLMErrorKind:
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"  # connection, 429, 5xx: a retry may work
    REJECTED = "rejected"  # 4xx: the request itself is refused; retrying will not help
    BAD_OUTPUT = "bad_output"  # truncated, filtered, or not the structure we asked for


class LLMError(Exception):
    def __init__(self, message: str, *, kind: str, retryable: bool, prompt_tokens: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.prompt_tokens = prompt_tokens


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it

    def as_message(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


@dataclass
class ChatResult:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: ChatUsage = field(default_factory=lambda: ChatUsage(0, 0, True))
    elapsed_ms: int = 0


class ChatModel(Protocol):
    name: str  # "llm:<model>", reported in Reply.backend
    model: str

    async def complete(
        self,
        messages: Sequence[dict],
        *,
        tools: Sequence[dict] | None = None,
        tool_choice: str | None = None,
        response_format: dict | None = None,
        on_content: ContentSink | None = None,
    ) -> ChatResult: ...

    def count_prompt(self, messages: Sequence[dict]) -> int: ...


class OpenAIChatModel:
    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        timeout: float,
        max_output_tokens: int,
        temperature: float = 0.1,
        counter: TokenCounter | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self.name = f"llm:{model}"
        self._timeout = timeout
        self._max_output_tokens = max_output_tokens
        self._temperature = temperature
        self._counter = counter or TokenCounter()

    def count_prompt(self, messages: Sequence[dict]) -> int:
        total = 0
        for message in messages:
            total += MESSAGE_OVERHEAD + self._counter.count(message.get("content") or "")
            for call in message.get("tool_calls") or []:
                total += self._counter.count(call["function"]["name"] + call["function"]["arguments"])
        return total

    async def complete(
        self,
        messages: Sequence[dict],
        *,
        tools: Sequence[dict] | None = None,
        tool_choice: str | None = None,
        response_format: dict | None = None,
        on_content: ContentSink | None = None,
    ) -> ChatResult:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self._max_output_tokens,
            "temperature": self._temperature,
        }
        if tools:
            params["tools"] = list(tools)
            params["tool_choice"] = tool_choice or "auto"
        if response_format is not None:
            params["response_format"] = response_format
        import openai  # already loaded by the client's maker; here for its error types

        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._stream(params, on_content)
        except TimeoutError as exc:
            raise self._error(f"no complete answer within {self._timeout:g}s", LLMErrorKind.TIMEOUT, True,
                              messages) from exc
        except openai.APITimeoutError as exc:
            raise self._error("request timed out", LLMErrorKind.TIMEOUT, True, messages) from exc
        except openai.APIConnectionError as exc:
            raise self._error("cannot reach the model server", LLMErrorKind.UNAVAILABLE, True, messages) from exc
        except openai.APIStatusError as exc:
            retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            kind = LLMErrorKind.UNAVAILABLE if retryable else LLMErrorKind.REJECTED
            raise self._error(f"model server answered {exc.status_code}", kind, retryable, messages) from exc
        except openai.APIError as exc:  # an error event inside the stream
            raise self._error(f"the stream failed: {type(exc).__name__}", LLMErrorKind.UNAVAILABLE, True,
                              messages) from exc
        result.elapsed_ms = round((loop.time() - started) * 1000)
        if result.finish_reason == "length":
            raise self._error("the answer was cut off at max tokens", LLMErrorKind.BAD_OUTPUT, True, messages)
        if result.finish_reason == "content_filter":
            raise self._error("the answer was withheld by a content filter", LLMErrorKind.BAD_OUTPUT, False,
                              messages)
        if result.usage.estimated:
            result.usage = ChatUsage(self.count_prompt(messages), self._counter.count(
                result.content + "".join(c.name + c.arguments for c in result.tool_calls)), estimated=True)
        return result

    async def _stream(self, params: dict, on_content: ContentSink | None) -> ChatResult:
        stream = await self._client.chat.completions.create(**params)
        content: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        usage: ChatUsage | None = None
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = ChatUsage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        content.append(delta.content)
                        if on_content is not None:
                            await on_content(delta.content)
                    for fragment in (delta.tool_calls if delta is not None else None) or []:
                        call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
                        if fragment.id:
                            call["id"] = fragment.id
                        if fragment.function is not None:
                            call["name"] += fragment.function.name or ""
                            call["arguments"] += fragment.function.arguments or ""
                    if choice.finish_reason:
                        finish = choice.finish_reason
        tool_calls = [ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or "{}")
                      for i, c in sorted(calls.items())]
        return ChatResult("".join(content), tool_calls, finish, usage or ChatUsage(0, 0, True))

    def _error(self, message: str, kind: str, retryable: bool, messages: Sequence[dict]) -> LLMError:
        return LLMError(f"{self.name}: {message}", kind=kind, retryable=retryable,
                        prompt_tokens=self.count_prompt(messages))

    async def close(self) -> None:
        await self._client.close()


def parse_json_object(content: str) -> dict:
    """The JSON object in a model's content; tolerates a code fence or text around it."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("{"):] if "{" in text else text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise LLMError("the answer is not JSON", kind=LLMErrorKind.BAD_OUTPUT, retryable=True) from None
        try:
            value = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise LLMError("the answer is not JSON", kind=LLMErrorKind.BAD_OUTPUT, retryable=True) from exc
    if not isinstance(value, dict):
        raise LLMError("the answer is not a JSON object", kind=LLMErrorKind.BAD_OUTPUT, retryable=True)
    return value
