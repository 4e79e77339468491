"""Web-chat edge: the page, a WebSocket that streams replies, and a plain JSON endpoint.

Visitors are identified by a random id the page keeps in localStorage; it is the
sender id of the ``web`` channel, so a reload finds the same conversation.
"""
from __future__ import annotations

import asyncio
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Protocol

from aiohttp import WSMsgType, web

from channels.base import Ingress
from channels.edge import MalformedInbound, checked_inbound, clean_text, load_json
from channels.messages import Channel, InboundMessage, new_id
from channels.web.hub import WebHub

log = logging.getLogger(__name__)

VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RecordedReply(Protocol):
    text: str
    language: str
    escalate: bool
    sources: list


class Transcripts(Protocol):
    async def conversation_for(self, channel: Channel, sender_id: str) -> str | None: ...

    async def get_reply(self, message_id: str) -> RecordedReply | None: ...

    async def transcript(self, conversation_id: str, limit: int = 50) -> list[dict]: ...


class BadRequest(ValueError):
    pass


MAX_BODY_BYTES = 64 * 1024  # a chat message is at most max_message_chars; this is plenty of room


class WebChat:
    def __init__(
        self,
        ingress: Ingress,
        transcripts: Transcripts,
        hub: WebHub,
        *,
        business_name: str,
        max_message_chars: int,
        allowed_origins: list[str],
        reply_timeout: float = 60.0,
    ) -> None:
        self._ingress = ingress
        self._transcripts = transcripts
        self._hub = hub
        self._business_name = business_name
        self._max_chars = max_message_chars
        self._allowed_origins = set(allowed_origins)
        self._reply_timeout = reply_timeout
        self._static = Path(str(resources.files("channels.web") / "static"))
        self._sockets: set[web.WebSocketResponse] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/ws/chat", self.websocket),
            web.post("/api/chat", self.post_message),
            web.get("/api/chat/history", self.history),
            web.get("/api/chat/config", self.config),
            web.static("/static", self._static),
        ]

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self._static / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response({"business_name": self._business_name, "languages": ["en", "zh", "ms", "ta"]})

    async def history(self, request: web.Request) -> web.Response:
        visitor_id = request.query.get("visitor_id", "")
        if not VISITOR_ID.fullmatch(visitor_id):
            return _error(400, "visitor_id must be 8-64 characters of letters, digits, '-' or '_'")
        return web.json_response({"messages": await self._history(visitor_id)})

    async def post_message(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, f"body is larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = await request.read()
            if len(raw) > MAX_BODY_BYTES:
                return _error(413, f"body is larger than {MAX_BODY_BYTES} bytes")
            body = load_json(raw)
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            message = self._message(body.get("visitor_id"), body.get("text"), body.get("client_id"))
        except (MalformedInbound, BadRequest) as exc:
            return _error(400, str(exc))
        result = await self._ingress.accept(message)
        # Listen before looking: a reply that lands while the store is read is not missed.
        waiting = asyncio.ensure_future(self._hub.wait_reply(result.message_id, self._reply_timeout))
        try:
            if result.duplicate:  # a client retrying a POST whose answer it never received
                recorded = await self._transcripts.get_reply(result.message_id)
                if recorded is not None:
                    return web.json_response({"message_id": result.message_id, "reply": _recorded_body(recorded)})
            reply = await waiting
        except asyncio.TimeoutError:
            return web.json_response({"message_id": result.message_id, "reply": None, "pending": True}, status=202)
        finally:
            waiting.cancel()
        return web.json_response({"message_id": result.message_id, "reply": _reply_body(reply)})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if self._allowed_origins and origin not in self._allowed_origins:
            raise web.HTTPForbidden(text="origin not allowed")
        visitor_id = request.query.get("visitor_id", "")
        if not VISITOR_ID.fullmatch(visitor_id):
            raise web.HTTPBadRequest(text="visitor_id must be 8-64 characters of letters, digits, '-' or '_'")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_BODY_BYTES)
        await ws.prepare(request)
        self._sockets.add(ws)

        async def send(event: dict) -> None:
            if ws.closed:
                raise ConnectionError("socket closed")
            await ws.send_json(event)

        self._hub.connect(visitor_id, send)
        try:
            await ws.send_json({"type": "history", "messages": await self._history(visitor_id)})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(ws, visitor_id, frame.data)
        finally:
            self._hub.disconnect(visitor_id, send)
            self._sockets.discard(ws)
        return ws

    async def close_sockets(self, app: web.Application | None = None) -> None:
        """On shutdown: tell every connected page we are going away, so the server stops at once
        instead of waiting for each socket to time out (the page reconnects to the next server)."""
        sockets, self._sockets = list(self._sockets), set()
        await asyncio.gather(*(ws.close(code=1001, message=b"server shutting down") for ws in sockets),
                             return_exceptions=True)

    async def _on_frame(self, ws: web.WebSocketResponse, visitor_id: str, data: str) -> None:
        try:
            body = load_json(data)
            if not isinstance(body, dict) or body.get("type") != "message":
                raise BadRequest("expected {\"type\": \"message\", \"text\": ...}")
            message = self._message(visitor_id, body.get("text"), body.get("client_id"))
        except (MalformedInbound, BadRequest) as exc:
            await ws.send_json({"type": "error", "error": str(exc)})
            return
        result = await self._ingress.accept(message)
        await ws.send_json({"type": "ack", "message_id": result.message_id, "client_id": body.get("client_id")})

    def _message(self, visitor_id: object, text: object, client_id: object) -> InboundMessage:
        if not isinstance(visitor_id, str) or not VISITOR_ID.fullmatch(visitor_id):
            raise BadRequest("visitor_id must be 8-64 characters of letters, digits, '-' or '_'")
        if not isinstance(text, str):
            raise BadRequest("text must be a non-empty string")
        text = clean_text(text).strip()  # control characters and lone surrogates mean nothing here
        if not text:
            raise BadRequest("text must be a non-empty string")
        if len(text) > self._max_chars:
            raise BadRequest(f"text is longer than {self._max_chars} characters")
        if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id)):
            raise BadRequest("client_id must be 1-64 characters of letters, digits, '-' or '_'")
        provider_id = f"{visitor_id}:{client_id}" if client_id else new_id()
        message = InboundMessage(channel=Channel.WEB, provider_message_id=provider_id, sender_id=visitor_id,
                                 text=text)
        try:
            return checked_inbound(message, max_text_chars=self._max_chars)
        except MalformedInbound as exc:
            raise BadRequest(str(exc)) from exc

    async def _history(self, visitor_id: str) -> list[dict]:
        conversation_id = await self._transcripts.conversation_for(Channel.WEB, visitor_id)
        if conversation_id is None:
            return []
        return [
            {"role": item["role"], "text": item["text"], "sources": item["sources"], "at": item["at"]}
            for item in await self._transcripts.transcript(conversation_id)
        ]


def _reply_body(event: dict) -> dict:
    return {key: event.get(key) for key in ("text", "sources", "language", "escalate")}


def _recorded_body(reply: RecordedReply) -> dict:
    """The same body from the stored decision (sources as the reply event carries them: none on a hand-off)."""
    sources = [] if reply.escalate else [{**s, "score": round(float(s.get("score", 0.0)), 4)} for s in reply.sources]
    return {"text": reply.text, "sources": sources, "language": reply.language, "escalate": reply.escalate}


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
