"""Admin API handlers under ``/api/admin``: knowledge base, conversations, contacts, analytics.

Every route names the scope it needs; a request without a valid key gets 401, a key
without the scope 403. Reads of customer data and every change are written to the
audit log with the key's prefix as the actor. Errors are JSON ``{"error": ...}``.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from aiohttp import web
from sqlalchemy import select

from channels.base import AcceptResult
from channels.messages import new_id
from config.languages import LANGUAGE_CODES
from memory.models import Contact, Conversation
from memory.pdpa import ERASED_PREFIX, ErasureBusy, PersonalData
from memory.store import MessageStore
from rag.catalog import Catalog, DocumentInfo
from rag.index import VectorIndex, VectorIndexError
from rag.ingest import Ingestor
from rag.retrieval import HybridRetriever
from supportlah.admin.analytics import Analytics
from supportlah.admin.audit import AuditLog
from supportlah.admin.keys import ApiKeys, KeyInfo
from supportlah.admin.limits import client_address
from supportlah.admin.metrics import CONTENT_TYPE, HttpMetrics, database_lines
from supportlah.admin.knowledge import KnowledgeError, KnowledgeFiles, read_upload
from supportlah.admin.openapi import DOCS_CSP, DOCS_INIT, DOCS_PAGE, build_spec, swagger_ui_assets
from supportlah.admin.uploads import UploadLimits

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY = web.RequestKey("api_key", KeyInfo)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CATEGORY = re.compile(r"^[\w -]{0,64}$")
_EARLIEST, _LATEST = date(2000, 1, 1), date(2100, 12, 31)


class InvalidTicketChange(ValueError):
    """The requested ticket change is not allowed (unknown status or priority, unknown field)."""


class TicketAdmin(Protocol):
    """What the API needs from the ticket store (escalation): see ``supportlah.admin.tickets_api``."""

    async def list(self, *, status: str | None, priority: str | None, assignee: str | None,
                   limit: int) -> list[dict]: ...

    async def get(self, number: int) -> dict | None:
        """Ticket ``#number`` with its event history; None if there is none."""

    async def update(self, number: int, changes: dict, *, actor: str) -> dict | None:
        """Apply the change to ticket ``#number``; None if there is no such ticket; InvalidTicketChange if
        not allowed."""


class TicketReplies(Protocol):
    """A staff reply to a ticket's customer through the pipeline: see ``supportlah.console.replies``."""

    async def reply(self, number: int, text: str, *, key_prefix: str, client_id: str) -> AcceptResult | None:
        """Queue the reply; None if there is no ticket ``number``; ValueError (a message for the caller)
        for empty or oversized text or a bad client id."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@dataclass
class AdminApi:
    keys: ApiKeys
    audit: AuditLog
    catalog: Catalog
    ingestor: Ingestor
    retriever: HybridRetriever
    index: VectorIndex
    store: MessageStore
    sessions: object
    personal_data: PersonalData
    analytics: Analytics
    http_metrics: HttpMetrics
    upload_dir: Path
    upload_limits: UploadLimits
    trusted_proxy_hops: int = 0
    metrics_require_key: bool = True
    tickets: TicketAdmin | None = None
    replies: TicketReplies | None = None

    def __post_init__(self) -> None:
        self._spec = build_spec(tickets=self.tickets is not None)
        self.knowledge = KnowledgeFiles(self.catalog, self.ingestor, self.index, self.upload_dir,
                                        self.upload_limits)

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get("/api/openapi.json", self.openapi),
            web.get("/api/docs", self.docs),
            web.get("/api/docs/init.js", self.docs_init),
            web.static("/api/docs/assets", swagger_ui_assets()),
            web.get("/metrics", self.metrics),
            self._route("GET", "/api/admin/documents", "kb:read", self.list_documents),
            self._route("POST", "/api/admin/documents", "kb:write", self.upload_document),
            self._route("DELETE", "/api/admin/documents/{document_id}", "kb:write", self.delete_document),
            self._route("POST", "/api/admin/documents/{document_id}/reindex", "kb:write", self.reindex_document),
            self._route("GET", "/api/admin/kb/stats", "kb:read", self.kb_stats),
            self._route("GET", "/api/admin/kb/search", "kb:read", self.kb_search),
            self._route("GET", "/api/admin/conversations", "contacts:read", self.list_conversations),
            self._route("GET", "/api/admin/conversations/{conversation_id}", "contacts:read", self.conversation),
            self._route("GET", "/api/admin/contacts", "contacts:read", self.find_contacts),
            self._route("DELETE", "/api/admin/contacts/{contact_id}", "contacts:erase", self.erase_contact),
            self._route("GET", "/api/admin/contacts/{contact_id}/export", "contacts:read", self.export_contact),
            self._route("GET", "/api/admin/analytics", "analytics:read", self.analytics_report),
        ]
        if self.tickets is not None:
            routes += [
                self._route("GET", "/api/admin/tickets", "tickets:read", self.list_tickets),
                # Addressed by the number people see (#123 in the staff group, `supportlah tickets list`),
                # as the console's POST /api/admin/tickets/{number}/reply is; the internal id is not a path.
                self._route("GET", "/api/admin/tickets/{number}", "tickets:read", self.get_ticket),
                self._route("PATCH", "/api/admin/tickets/{number}", "tickets:write", self.update_ticket),
            ]
        if self.replies is not None:
            routes.append(self._route("POST", r"/api/admin/tickets/{number:\d{1,9}}/reply", "tickets:write",
                                      self.reply_to_ticket))
        return routes

    # --- auth -----------------------------------------------------------------
    def _route(self, method: str, path: str, scope: str, handler: Handler) -> web.RouteDef:
        async def guarded(request: web.Request) -> web.StreamResponse:
            denied = await self._authorize(request, scope)
            if denied is not None:
                return denied
            try:
                return await handler(request)
            except ApiError as exc:
                return error_response(exc.status, exc.message)

        guarded.__name__ = handler.__name__
        return web.route(method, path, guarded)

    async def _authorize(self, request: web.Request, scope: str) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("X-API-Key", "")
        key = await self.keys.authenticate(token) if token else None
        if key is None:
            return error_response(401, "a valid API key is required (Authorization: Bearer <key>)",
                                  {"WWW-Authenticate": 'Bearer realm="supportlah-admin"'})
        if scope not in key.scopes:
            return error_response(403, f"this key lacks the {scope} scope")
        request[API_KEY] = key
        return None

    async def _audit(self, request: web.Request, action: str, target: str | None, **detail: object) -> None:
        key = request[API_KEY]
        await self.audit.record(f"key:{key.prefix}", action, target, detail=detail,
                                remote=client_address(request, self.trusted_proxy_hops))

    # --- public -----------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self._spec)

    async def docs(self, request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html", headers={"Content-Security-Policy": DOCS_CSP})

    async def docs_init(self, request: web.Request) -> web.Response:
        return web.Response(text=DOCS_INIT, content_type="text/javascript")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        if self.metrics_require_key:
            denied = await self._authorize(request, "analytics:read")
            if denied is not None:
                return denied
        lines = self.http_metrics.lines() + await database_lines(self.sessions)
        try:
            lines += [f"supportlah_kb_indexed_chunks {await self.index.count()}"]
        except VectorIndexError:
            log.warning("metrics: index count unavailable", exc_info=True)
        return web.Response(body=("\n".join(lines) + "\n").encode(), headers={"Content-Type": CONTENT_TYPE})

    # --- knowledge base ---------------------------------------------------------
    async def list_documents(self, request: web.Request) -> web.Response:
        category = _opt(request, "category", 64)
        language = _opt(request, "language", 16)
        if language is not None and language not in LANGUAGE_CODES:
            raise ApiError(400, f"language must be one of {', '.join(sorted(LANGUAGE_CODES))}")
        documents = await self.catalog.list_documents(category=category, language=language)
        return web.json_response({"documents": [_document(d) for d in documents]})

    async def upload_document(self, request: web.Request) -> web.Response:
        name, data, category, language = await self._read_upload(request)
        try:
            info, status = await self.knowledge.add(name, data, category=category, language=language)
        except KnowledgeError as exc:
            if exc.rejected:
                await self._audit(request, "document.rejected", name, reason=exc.reason)
            raise ApiError(exc.status, exc.reason) from exc
        await self._audit(request, "document.upload", info.id, name=info.name, status=status, chunks=info.chunk_count)
        return web.json_response({"document": _document(info), "status": status}, status=201)

    async def _read_upload(self, request: web.Request) -> tuple[str, bytes, str | None, str | None]:
        try:
            name, data, fields = await read_upload(request, self.upload_limits.max_bytes, ("category", "language"))
        except KnowledgeError as exc:
            raise ApiError(exc.status, exc.reason) from exc
        category = fields.get("category") or None
        if category is not None and not _CATEGORY.match(category):
            raise ApiError(400, "category: at most 64 letters, digits, spaces, '-' or '_'")
        language = fields.get("language") or None
        if language is not None and language not in LANGUAGE_CODES:
            raise ApiError(400, f"language must be one of {', '.join(sorted(LANGUAGE_CODES))}")
        return name, data, category, language

    async def delete_document(self, request: web.Request) -> web.Response:
        document = await self._document_or_404(request)
        await self.knowledge.delete(document)
        await self._audit(request, "document.delete", document.id, name=document.name)
        return web.Response(status=204)

    async def reindex_document(self, request: web.Request) -> web.Response:
        document = await self._document_or_404(request)
        try:
            info = await self.knowledge.reindex(document)
        except KnowledgeError as exc:
            await self._audit(request, "document.reindex", document.id, name=document.name, status="failed")
            raise ApiError(exc.status, exc.reason) from exc
        await self._audit(request, "document.reindex", document.id, name=document.name, status="reindexed")
        return web.json_response({"document": _document(info), "status": "reindexed"})

    async def _document_or_404(self, request: web.Request) -> DocumentInfo:
        document_id = request.match_info["document_id"]
        document = await self.catalog.get(document_id) if _ID.match(document_id) else None
        if document is None:
            raise ApiError(404, "no such document")
        return document

    async def kb_stats(self, request: web.Request) -> web.Response:
        stats = await self.catalog.stats()
        return web.json_response({
            "documents": stats.documents, "chunks": stats.chunks, "tokens": stats.tokens,
            "indexed_chunks": await self.index.count(),
            "by_category": {k or "": v for k, v in stats.by_category.items()},
            "by_language": {k or "": v for k, v in stats.by_language.items()},
        })

    async def kb_search(self, request: web.Request) -> web.Response:
        query = (request.query.get("q") or "").strip()
        if not query or len(query) > 500:
            raise ApiError(400, "q: a query of 1-500 characters is required")
        k = _int(request, "k", 5, 1, 50)
        hits = await self.retriever.search(query, k=k)
        return web.json_response({"results": [
            {"document": h.document, "chunk_id": h.chunk_id, "score": round(float(h.score), 6),
             "heading": h.heading, "text": h.text} for h in hits
        ]})

    # --- conversations and contacts -------------------------------------------
    async def list_conversations(self, request: web.Request) -> web.Response:
        channel = _opt(request, "channel", 16)
        limit, offset = _int(request, "limit", 50, 1, 500), _int(request, "offset", 0, 0, 1_000_000)
        query = (select(Conversation, Contact.display_name).join(Contact, Contact.id == Conversation.contact_id)
                 .where(Contact.channel_user_id.not_like(f"{ERASED_PREFIX}%"))
                 .order_by(Conversation.last_message_at.desc(), Conversation.id).limit(limit).offset(offset))
        if channel:
            query = query.where(Conversation.channel == channel)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return web.json_response({"conversations": [_conversation(c, name) for c, name in rows]})

    async def conversation(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        async with self.sessions() as session:
            row = (await session.execute(
                select(Conversation, Contact.display_name).join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.id == conversation_id)
            )).first() if _ID.match(conversation_id) else None
        if row is None:
            raise ApiError(404, "no such conversation")
        messages = await self.store.transcript(conversation_id, limit=500)
        await self._audit(request, "conversation.view", conversation_id)
        return web.json_response({"conversation": _conversation(*row), "messages": messages})

    async def find_contacts(self, request: web.Request) -> web.Response:
        channel = _opt(request, "channel", 16)
        user_id = _opt(request, "user_id", 128)
        limit = _int(request, "limit", 50, 1, 500)
        query = (select(Contact).where(Contact.channel_user_id.not_like(f"{ERASED_PREFIX}%"))
                 .order_by(Contact.last_inbound_at.desc().nulls_last(), Contact.id).limit(limit))
        if channel:
            query = query.where(Contact.channel == channel)
        if user_id:
            query = query.where(Contact.channel_user_id == user_id)
        async with self.sessions() as session:
            contacts = (await session.scalars(query)).all()
        await self._audit(request, "contact.search", None, channel=channel, count=len(contacts))
        return web.json_response({"contacts": [_contact(c) for c in contacts]})

    async def export_contact(self, request: web.Request) -> web.Response:
        contact_id = request.match_info["contact_id"]
        export = await self.personal_data.export(contact_id) if _ID.match(contact_id) else None
        if export is None:
            raise ApiError(404, "no such contact")
        await self._audit(request, "contact.export", contact_id)
        return web.json_response(export, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))

    async def erase_contact(self, request: web.Request) -> web.Response:
        contact_id = request.match_info["contact_id"]
        try:
            report = await self.personal_data.erase(contact_id, requested_via="admin") if _ID.match(
                contact_id) else None
        except ErasureBusy as exc:
            raise ApiError(409, f"{exc}; try again shortly") from exc
        if report is None:
            raise ApiError(404, "no such contact")
        await self._audit(request, "contact.erase", contact_id, counts=report.counts)
        return web.json_response({"contact_id": report.contact_id, "erased_at": report.erased_at.isoformat(),
                                  "counts": report.counts})

    # --- analytics ----------------------------------------------------------------
    async def analytics_report(self, request: web.Request) -> web.Response:
        today = date.today()
        until = _date(request, "to", today)
        since = _date(request, "from", until - timedelta(days=29))
        if since > until:
            raise ApiError(400, "'from' must not be after 'to'")
        if (until - since).days > 366:
            raise ApiError(400, "the period may be at most 366 days")
        return web.json_response(await self.analytics.report(since, until))

    # --- tickets ------------------------------------------------------------------
    async def list_tickets(self, request: web.Request) -> web.Response:
        assert self.tickets is not None
        tickets = await self.tickets.list(status=_opt(request, "status", 20), priority=_opt(request, "priority", 16),
                                          assignee=_opt(request, "assignee", 32),
                                          limit=_int(request, "limit", 50, 1, 500))
        return web.json_response({"tickets": tickets})

    async def get_ticket(self, request: web.Request) -> web.Response:
        assert self.tickets is not None
        ticket = await self.tickets.get(_ticket_number(request))
        if ticket is None:
            raise ApiError(404, "no such ticket")
        return web.json_response({"ticket": ticket})

    async def update_ticket(self, request: web.Request) -> web.Response:
        assert self.tickets is not None
        number = _ticket_number(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "body must be a JSON object") from exc
        if not isinstance(body, dict) or not body:
            raise ApiError(400, "body must be a JSON object with status, priority or assignee_id")
        actor = f"key:{request[API_KEY].prefix}"
        try:
            ticket = await self.tickets.update(number, body, actor=actor)
        except InvalidTicketChange as exc:
            raise ApiError(400, str(exc)) from exc
        if ticket is None:
            raise ApiError(404, "no such ticket")
        await self._audit(request, "ticket.update", f"#{number}", **{k: body[k] for k in sorted(body)})
        return web.json_response({"ticket": ticket})

    async def reply_to_ticket(self, request: web.Request) -> web.Response:
        """The customer gets ``text`` on their channel exactly as a staff-group or console reply (202: queued)."""
        assert self.replies is not None
        number = int(request.match_info["number"])
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "body must be a JSON object") from exc
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ApiError(400, 'body must be a JSON object with "text" (and optionally "client_id")')
        client_id = body.get("client_id") or new_id()
        if not isinstance(client_id, str):
            raise ApiError(400, "client_id must be a string")
        try:
            accepted = await self.replies.reply(number, body["text"], key_prefix=request[API_KEY].prefix,
                                                client_id=client_id)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        if accepted is None:
            raise ApiError(404, "no such ticket")
        await self._audit(request, "ticket.reply", str(number), message_id=accepted.message_id,
                          duplicate=accepted.duplicate)
        return web.json_response({"message_id": accepted.message_id, "duplicate": accepted.duplicate,
                                  "client_id": client_id}, status=202)


def _ticket_number(request: web.Request) -> int:
    raw = request.match_info["number"]
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise ApiError(400, "the ticket is addressed by its number, as in #123: a positive integer")
    return int(raw)


def _opt(request: web.Request, name: str, max_len: int) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_len:
        raise ApiError(400, f"{name} is longer than {max_len} characters")
    return value


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a date like 2025-01-31") from exc
    if not _EARLIEST <= value <= _LATEST:
        raise ApiError(400, f"{name} must be between {_EARLIEST} and {_LATEST}")
    return value


def _document(d: DocumentInfo) -> dict:
    return {"id": d.id, "name": d.name, "kind": d.kind, "category": d.category, "language": d.language,
            "chunks": d.chunk_count, "tokens": d.token_count, "size_bytes": d.size_bytes, "sha256": d.sha256,
            "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat()}


def _conversation(c: Conversation, display_name: str | None) -> dict:
    return {"id": c.id, "contact_id": c.contact_id, "channel": c.channel, "mode": c.mode, "language": c.language,
            "display_name": display_name, "created_at": c.created_at.isoformat(),
            "last_message_at": c.last_message_at.isoformat()}


def _contact(c: Contact) -> dict:
    return {"id": c.id, "channel": c.channel, "channel_user_id": c.channel_user_id, "display_name": c.display_name,
            "language": c.language, "created_at": c.created_at.isoformat(),
            "last_message_at": c.last_inbound_at.isoformat() if c.last_inbound_at else None}
