"""Web-chat edge: the page, a WebSocket that streams replies, and a plain JSON endpoint.

Visitors are identified by a random id the page keeps in localStorage; it is the
sender id of the ``web`` channel, so a reload finds the same conversation.

The same page runs embedded on the owner's site (``/widget.js`` draws a bubble that opens
``/embed`` in an iframe, so the host page's CSS and scripts cannot reach it). Which sites may
embed it is ``allowed_origins``: the embed page's ``frame-ancestors``, CORS on the config the
widget reads, and the Origin check on the socket and on POSTs all use that one list.
"""
from __future__ import annotations

import asyncio
import logging
import re
from importlib import resources
from pathlib import Path
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from channels.base import Ingress
from channels.edge import MalformedInbound, checked_inbound, clean_text, load_json
from channels.messages import Channel, InboundMessage, new_id
from channels.web.hub import WebHub
from config.languages import Language

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


class ChatIntro(Protocol):
    """What the chat says when it opens (the composition root reads it from settings and the KB)."""

    greeting: str

    async def examples(self) -> list[str]: ...


class VisitorData(Protocol):
    """A visitor's own data, as the PDPA access request gives it (None: nothing held)."""

    async def export(self, channel: Channel, sender_id: str) -> dict | None: ...


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
        intro: ChatIntro,
        languages: Sequence[Language],
        visitor_data: VisitorData | None = None,
        reply_timeout: float = 60.0,
    ) -> None:
        self._ingress = ingress
        self._transcripts = transcripts
        self._hub = hub
        self._business_name = business_name
        self._max_chars = max_message_chars
        self._allowed_origins = {origin.rstrip("/") for origin in allowed_origins}
        self._intro = intro
        self._languages = list(languages)
        self._visitor_data = visitor_data
        self._reply_timeout = reply_timeout
        self._static = Path(str(resources.files("channels.web") / "static"))
        self._sockets: set[web.WebSocketResponse] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/embed", self.embed),
            web.get("/widget.js", self.widget),
            web.get("/ws/chat", self.websocket),
            web.post("/api/chat", self.post_message),
            web.get("/api/chat/history", self.history),
            web.get("/api/chat/config", self.config),
            web.get("/api/chat/export", self.export),
            web.static("/static", self._static),
        ]

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self._static / "index.html", headers={"Cache-Control": "no-cache"})

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """The chat page for the widget's iframe: only the allowed sites may frame it."""
        ancestors = " ".join(sorted(self._allowed_origins)) or "*"
        return web.FileResponse(self._static / "index.html", headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                                       f"frame-ancestors 'self' {ancestors}",
        })

    async def widget(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self._static / "widget.js", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        """What the page and the widget show before the first message. Read cross-origin by the widget:
        an allowed site gets CORS headers, any other none (the browser then hides the bubble)."""
        body = {
            "business_name": self._business_name,
            "greeting": self._intro.greeting,
            "examples": await self._intro.examples(),
            "languages": [{"code": lang.code, "name": lang.native} for lang in self._languages],
            "max_message_chars": self._max_chars,
        }
        response = web.json_response(body)
        origin = request.headers.get("Origin")
        if origin is not None and self._origin_allowed(request):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def export(self, request: web.Request) -> web.Response:
        """The visitor's "my data": everything held about them, for the page's summary and download."""
        visitor_id = request.query.get("visitor_id", "")
        if not VISITOR_ID.match(visitor_id):
            return _error(400, "visitor_id must be 8-64 characters of letters, digits, '-' or '_'")
        if not self._origin_allowed(request):
            return _error(403, "origin not allowed")
        document = await self._visitor_data.export(Channel.WEB, visitor_id) if self._visitor_data else None
        return web.json_response({"data": document}, headers={"Cache-Control": "no-store"})

    def _origin_allowed(self, request: web.Request) -> bool:
        """No Origin (not a browser), our own origin, or one of the allowed sites (all, when none are set)."""
        origin = request.headers.get("Origin")
        if origin is None or not self._allowed_origins or origin in self._allowed_origins:
            return True
        return urlsplit(origin).netloc == request.host

    async def history(self, request: web.Request) -> web.Response:
        visitor_id = request.query.get("visitor_id", "")
        if not VISITOR_ID.fullmatch(visitor_id):
            return _error(400, "visitor_id must be 8-64 characters of letters, digits, '-' or '_'")
        return web.json_response({"messages": await self._history(visitor_id)})

    async def post_message(self, request: web.Request) -> web.Response:
        if not self._origin_allowed(request):
            return _error(403, "origin not allowed")
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
        if not self._origin_allowed(request):
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
            {"role": item["role"], "text": item["text"], "sources": item["sources"], "at": item["at"],
             "escalate": item.get("escalate", False), "language": item.get("language")}
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
