"""A local fake of an OpenAI-compatible chat endpoint (``POST /v1/chat/completions``, streamed).

It speaks the documented wire format: a JSON request with ``model``/``messages``/
``tools``/``response_format``, answered as server-sent events of
``chat.completion.chunk`` objects (content deltas, tool-call deltas with argument
fragments, a usage chunk when ``stream_options.include_usage`` is set) ending with
``data: [DONE]``; errors are ``{"error": {...}}`` bodies. The model is a script:
each request takes the next item (a :class:`Completion`, :class:`Failure`,
:class:`Stall`, or a callable that builds one from the request). Everything it
receives is kept in :attr:`requests`; anything malformed or unscripted is answered
400/500 *and* recorded in :attr:`errors`, which tests assert is empty.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

from aiohttp import web

from tests.fakes.loopback import serve_on_loopback

KNOWN_KEYS = frozenset({
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "response_format", "temperature",
    "max_tokens", "max_completion_tokens", "parallel_tool_calls", "seed", "user", "top_p",
})
ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass
class Completion:
    """One model turn: text content (streamed in ``piece``-character deltas) and/or tool calls."""

    content: str | None = None
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)  # (function name, arguments)
    finish_reason: str | None = None  # default: "tool_calls" when there are any, else "stop"
    usage: tuple[int, int] | None = None  # (prompt, completion); default: a character-based estimate
    piece: int = 9
    drop_after: int | None = None  # close the connection after this many content characters (a dying server)


@dataclass
class Failure:
    status: int
    message: str = "upstream error"
    kind: str = "server_error"


@dataclass
class Stall:
    """Hold the response this long before answering with ``then`` (client timeouts)."""

    seconds: float
    then: Completion | Failure | None = None


ScriptItem = Union[Completion, Failure, Stall, Callable[[dict], "ScriptItem"]]


def json_content(**fields: object) -> str:
    """Structured output as a model returns it in ``content``."""
    return json.dumps(fields, ensure_ascii=False)


class FakeChatAPI:
    def __init__(self, *, api_key: str = "llm-key") -> None:
        self.api_key = api_key
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.base_url = ""
        self._script: list[ScriptItem] = []
        self._default: Callable[[dict], ScriptItem] | None = None
        self._ids = (f"call_{n}" for n in itertools.count(1))
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------
    async def __aenter__(self) -> FakeChatAPI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_route("*", "/{tail:.*}", self._unexpected)
        self._runner, address = await serve_on_loopback(app)
        self.base_url = address + "/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- scripting ------------------------------------------------------------
    def script(self, *items: ScriptItem) -> None:
        """Answer the next requests with these, in order."""
        self._script.extend(items)

    def default(self, responder: Callable[[dict], ScriptItem] | None) -> None:
        """Answer every request not covered by :meth:`script` with ``responder(request)``."""
        self._default = responder

    @property
    def pending(self) -> int:
        return len(self._script)

    # --- what was sent ----------------------------------------------------------
    def sent_text(self) -> str:
        """Every message content and tool-call argument of every request, joined (for leak checks)."""
        parts: list[str] = []
        for body in self.requests:
            for message in body.get("messages", []):
                parts.append(message.get("content") or "")
                for call in message.get("tool_calls") or []:
                    parts.append(call["function"]["arguments"])
        return "\n".join(parts)

    # --- handler ----------------------------------------------------------------
    async def _complete(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(f"bad or missing bearer token on {request.path}", 401, "invalid_request_error")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._error("request body is not JSON", 400, "invalid_request_error")
        self.requests.append(body)
        problem = _validate(body)
        if problem:
            return self._error(problem, 400, "invalid_request_error")
        item: ScriptItem | None = self._script.pop(0) if self._script else None
        if item is None and self._default is not None:
            item = self._default
        if item is None:
            return self._error("no scripted answer left for this request", 500, "server_error")
        while callable(item) and not isinstance(item, (Completion, Failure, Stall)):
            item = item(body)
        if isinstance(item, Stall):
            await asyncio.sleep(item.seconds)
            item = item.then
            if item is None:
                return web.json_response({"error": {"message": "stalled", "type": "server_error"}}, status=504)
        if isinstance(item, Failure):
            return web.json_response({"error": {"message": item.message, "type": item.kind, "code": None}},
                                     status=item.status)
        assert isinstance(item, Completion), item
        return await self._stream(request, body, item)

    async def _stream(self, request: web.Request, body: dict, item: Completion) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{len(self.requests)}"
        model = body["model"]

        async def send(delta: dict, finish: str | None = None, usage: dict | None = None) -> None:
            chunk: dict = {"id": chunk_id, "object": "chat.completion.chunk", "created": 1700000000,
                           "model": model, "choices": []}
            if usage is not None:
                chunk["usage"] = usage
            else:
                chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        content = item.content or ""
        for start in range(0, len(content), item.piece):
            if item.drop_after is not None and start >= item.drop_after:
                request.transport.close()
                return response
            await send({"content": content[start : start + item.piece]})
        for index, (name, arguments) in enumerate(item.tool_calls):
            text = json.dumps(arguments, ensure_ascii=False)
            await send({"tool_calls": [{"index": index, "id": next(self._ids), "type": "function",
                                        "function": {"name": name, "arguments": ""}}]})
            for start in range(0, len(text), item.piece):
                await send({"tool_calls": [{"index": index, "function": {"arguments": text[start : start + item.piece]}}]})
        await send({}, item.finish_reason or ("tool_calls" if item.tool_calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt, completion = item.usage or _estimate(body, item)
            await send({}, usage={"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _error(self, problem: str, status: int, kind: str) -> web.Response:
        self.errors.append(problem)
        return web.json_response({"error": {"message": problem, "type": kind, "code": None}}, status=status)

    async def _unexpected(self, request: web.Request) -> web.Response:
        return self._error(f"unexpected {request.method} {request.path}", 404, "invalid_request_error")


def _estimate(body: dict, item: Completion) -> tuple[int, int]:
    prompt_chars = sum(len(m.get("content") or "") for m in body["messages"])
    completion_chars = len(item.content or "") + sum(len(json.dumps(a)) for _, a in item.tool_calls)
    return prompt_chars // 4 + 1, completion_chars // 4 + 1


def _validate(body: dict) -> str | None:
    """What is wrong with a chat-completions request, per the API reference; None if nothing."""
    unknown = set(body) - KNOWN_KEYS
    if unknown:
        return f"unexpected request keys {sorted(unknown)}"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model must be a non-empty string"
    if body.get("stream") is not True:
        return "this fake only serves streamed completions (stream: true)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    open_calls: set[str] = set()
    for position, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            return f"messages[{position}].role {role!r} is not one of {sorted(ROLES)}"
        content = message.get("content")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                if call.get("type") != "function" or not call.get("id"):
                    return f"messages[{position}].tool_calls needs type function and an id"
                try:
                    json.loads(call["function"]["arguments"])
                except (KeyError, TypeError, json.JSONDecodeError):
                    return f"messages[{position}].tool_calls arguments must be a JSON string"
                open_calls.add(call["id"])
            if content is not None and not isinstance(content, str):
                return f"messages[{position}].content must be a string or null"
            continue
        if not isinstance(content, str):
            return f"messages[{position}].content must be a string"
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                return f"messages[{position}] answers unknown tool call {message.get('tool_call_id')!r}"
            open_calls.discard(message["tool_call_id"])
    if open_calls:
        return f"tool calls left unanswered: {sorted(open_calls)}"
    for tool in body.get("tools") or []:
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not function.get("name") or not isinstance(function.get("parameters"), dict):
            return f"malformed tool definition {tool!r}"
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required") and not isinstance(choice, dict):
        return f"bad tool_choice {choice!r}"
    if choice is not None and not body.get("tools"):
        return "tool_choice without tools"
    fmt = body.get("response_format")
    if fmt is not None:
        if fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema") or {}
            if not schema.get("name") or not isinstance(schema.get("schema"), dict):
                return "json_schema response_format needs a name and a schema"
        elif fmt.get("type") not in ("json_object", "text"):
            return f"unknown response_format type {fmt.get('type')!r}"
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and (not isinstance(body[key], int) or body[key] < 1):
            return f"{key} must be a positive integer"
    return None
