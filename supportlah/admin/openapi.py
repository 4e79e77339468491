"""The admin API's OpenAPI 3 description (served at /api/openapi.json) and its docs page.

Written by hand next to the handlers so the contract is reviewed like code; the fuzz
test holds the handlers to it. ``/api/docs`` is Swagger UI reading that spec: its assets
come from the ``swagger-ui-py`` package (Apache-2.0, licence file shipped with them) and are
served from here, so the page works offline and loads nothing from a CDN.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from config.languages import LANGUAGE_CODES
from supportlah.admin.keys import SCOPES

SCOPE_MEANINGS = {
    "kb:read": "list documents, knowledge-base counts and search",
    "kb:write": "upload, delete and re-index documents",
    "tickets:read": "list tickets and read one with its history",
    "tickets:write": "change a ticket's status, priority or assignee, and reply to its customer",
    "contacts:read": "conversations, contacts and a contact's data export",
    "contacts:erase": "erase a contact (PDPA erasure)",
    "analytics:read": "analytics and /metrics",
}

_ERROR = {"$ref": "#/components/schemas/Error"}
_LANGUAGES = list(LANGUAGE_CODES)


def _err(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _ok(description: str, schema: dict, status: str = "200") -> dict:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _op(summary: str, scope: str, responses: dict, *, parameters: list | None = None, body: dict | None = None,
        errors: tuple[str, ...] = ()) -> dict:
    known = {"400": "Invalid request", "404": "Not found", "409": "Conflict", "413": "Too large",
             "415": "Unsupported or disguised file type", "422": "Rejected content",
             "503": "Temporarily unavailable"}
    operation: dict = {
        "summary": summary,
        "security": [{"bearerAuth": []}],
        "x-required-scope": scope,
        "responses": {**responses, "401": _err("Missing or wrong API key"),
                      "403": _err(f"The key lacks the {scope} scope"), "429": _err("Rate limit exceeded"),
                      **{code: _err(known[code]) for code in errors}},
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    operation["description"] = f"Requires scope `{scope}`."
    return operation


def _path_id(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}


def _query(name: str, schema: dict, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_DOCUMENT = {
    "type": "object",
    "example": {"id": "0b9e…", "name": "menu.pdf", "kind": "pdf", "category": "menu", "language": "en",
                "chunks": 12, "tokens": 4210, "size_bytes": 183204, "sha256": "9f86d081…",
                "created_at": "2026-12-03T09:00:00+00:00", "updated_at": "2026-12-03T09:00:00+00:00"},
    "required": ["id", "name", "kind", "chunks", "tokens", "size_bytes", "sha256", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "category": {"type": ["string", "null"]}, "language": {"type": ["string", "null"]},
        "chunks": {"type": "integer"}, "tokens": {"type": "integer"}, "size_bytes": {"type": "integer"},
        "sha256": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_CONVERSATION = {
    "type": "object",
    "required": ["id", "contact_id", "channel", "mode", "created_at", "last_message_at"],
    "properties": {
        "id": {"type": "string"}, "contact_id": {"type": "string"}, "channel": {"type": "string"},
        "mode": {"type": "string"}, "language": {"type": ["string", "null"]},
        "display_name": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "last_message_at": {"type": "string", "format": "date-time"},
    },
}
_CONTACT = {
    "type": "object",
    "required": ["id", "channel", "channel_user_id", "created_at"],
    "properties": {
        "id": {"type": "string"}, "channel": {"type": "string"}, "channel_user_id": {"type": "string"},
        "display_name": {"type": ["string", "null"]}, "language": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "last_message_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_TICKET = {
    "type": "object",
    "example": {"id": "5f0c…", "number": 123, "status": "claimed", "priority": "high", "reason": "low_confidence",
                "channel": "whatsapp", "conversation_id": "c41a…", "language": "en", "assignee_id": "42",
                "assignee_name": "Mei Ling", "summary": "Asks: “Can you deliver on Sunday?”",
                "created_at": "2026-12-03T09:00:00+00:00", "updated_at": "2026-12-03T09:05:00+00:00",
                "sla_due_at": "2026-12-03T10:00:00+00:00"},
    "required": ["id", "number", "status", "priority", "reason", "channel", "conversation_id", "created_at"],
    "properties": {
        "id": {"type": "string"}, "number": {"type": "integer"}, "status": {"type": "string"},
        "priority": {"type": "string"}, "reason": {"type": "string"}, "channel": {"type": "string"},
        "conversation_id": {"type": "string"}, "language": {"type": "string"},
        "assignee_id": {"type": ["string", "null"]}, "assignee_name": {"type": ["string", "null"]},
        "summary": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "sla_due_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size.")
_OFFSET = _query("offset", {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}, "Rows to skip.")


def build_spec(*, tickets: bool) -> dict:
    """The OpenAPI document; ``tickets`` adds the ticket endpoints (when escalation is installed)."""
    paths: dict = {
        "/api/admin/documents": {
            "get": _op("List knowledge-base documents", "kb:read",
                       _ok("Documents", {"type": "object", "required": ["documents"],
                                         "properties": {"documents": {"type": "array", "items": _DOCUMENT}}}),
                       parameters=[_query("category", {"type": "string", "maxLength": 64}, "Only this category."),
                                   _query("language", {"type": "string", "enum": _LANGUAGES}, "Only this language.")],
                       errors=("400",)),
            "post": _op("Upload a document (PDF, DOCX, TXT, MD, HTML, CSV) and index it", "kb:write",
                        _ok("Indexed", {"type": "object", "required": ["document", "status"],
                                        "properties": {"document": _DOCUMENT, "status": {"type": "string"}}}, "201"),
                        body={"required": True, "description": "The file, and optionally its category and language "
                                                               "(detected when omitted).",
                              "content": {"multipart/form-data": {"schema": {
                                  "type": "object", "required": ["file"],
                                  "properties": {
                                      "file": {"type": "string", "format": "binary",
                                               "description": "PDF, DOCX, TXT, MD, HTML or CSV"},
                                      "category": {"type": "string", "maxLength": 64, "pattern": "^[\\w -]*$",
                                                   "description": "Stored with the document", "example": "menu"},
                                      "language": {"type": "string", "enum": _LANGUAGES, "example": "en"},
                                  }}}}},
                        errors=("400", "413", "415", "422", "503")),
        },
        "/api/admin/documents/{document_id}": {
            "delete": _op("Delete a document and its vectors", "kb:write",
                          {"204": {"description": "Deleted"}},
                          parameters=[_path_id("document_id", "Document id.")], errors=("404",)),
        },
        "/api/admin/documents/{document_id}/reindex": {
            "post": _op("Re-read a document from its file and index it again", "kb:write",
                        _ok("Reindexed", {"type": "object", "required": ["document", "status"],
                                          "properties": {"document": _DOCUMENT, "status": {"type": "string"}}}),
                        parameters=[_path_id("document_id", "Document id.")], errors=("404", "409", "422", "503")),
        },
        "/api/admin/kb/stats": {
            "get": _op("Knowledge-base counts", "kb:read",
                       _ok("Counts", {"type": "object", "required": ["documents", "chunks", "tokens", "indexed_chunks"],
                                      "properties": {"documents": {"type": "integer"}, "chunks": {"type": "integer"},
                                                     "tokens": {"type": "integer"},
                                                     "indexed_chunks": {"type": "integer"},
                                                     "by_category": {"type": "object"},
                                                     "by_language": {"type": "object"}}})),
        },
        "/api/admin/kb/search": {
            "get": _op("Search the knowledge base as the agent would", "kb:read",
                       _ok("Ranked chunks", {"type": "object", "required": ["results"], "properties": {"results": {
                           "type": "array", "items": {"type": "object",
                                                      "required": ["document", "chunk_id", "score", "text"],
                                                      "properties": {"document": {"type": "string"},
                                                                     "chunk_id": {"type": "string"},
                                                                     "score": {"type": "number"},
                                                                     "heading": {"type": "string"},
                                                                     "text": {"type": "string"}}}}}}),
                       parameters=[_query("q", {"type": "string", "minLength": 1, "maxLength": 500}, "Query.",
                                          required=True),
                                   _query("k", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                                          "How many results.")],
                       errors=("400",)),
        },
        "/api/admin/conversations": {
            "get": _op("Recent conversations", "contacts:read",
                       _ok("Conversations", {"type": "object", "required": ["conversations"], "properties": {
                           "conversations": {"type": "array", "items": _CONVERSATION}}}),
                       parameters=[_query("channel", {"type": "string", "maxLength": 16}, "Only this channel."),
                                   _LIMIT, _OFFSET],
                       errors=("400",)),
        },
        "/api/admin/conversations/{conversation_id}": {
            "get": _op("One conversation with its messages", "contacts:read",
                       _ok("Conversation", {"type": "object", "required": ["conversation", "messages"],
                                            "properties": {"conversation": _CONVERSATION,
                                                           "messages": {"type": "array",
                                                                        "items": {"type": "object"}}}}),
                       parameters=[_path_id("conversation_id", "Conversation id.")], errors=("404",)),
        },
        "/api/admin/contacts": {
            "get": _op("Find contacts (by channel and user id, or the most recent)", "contacts:read",
                       _ok("Contacts", {"type": "object", "required": ["contacts"], "properties": {
                           "contacts": {"type": "array", "items": _CONTACT}}}),
                       parameters=[_query("channel", {"type": "string", "maxLength": 16}, "Channel."),
                                   _query("user_id", {"type": "string", "maxLength": 128},
                                          "The customer's id on that channel (phone, chat id, visitor id)."),
                                   _LIMIT],
                       errors=("400",)),
        },
        "/api/admin/contacts/{contact_id}": {
            "delete": _op("Erase a contact everywhere (PDPA erasure)", "contacts:erase",
                          _ok("Erased", {"type": "object", "required": ["contact_id", "erased_at", "counts"],
                                         "properties": {"contact_id": {"type": "string"},
                                                        "erased_at": {"type": "string", "format": "date-time"},
                                                        "counts": {"type": "object"}}}),
                          parameters=[_path_id("contact_id", "Contact id.")], errors=("404", "409")),
        },
        "/api/admin/contacts/{contact_id}/export": {
            "get": _op("Everything held about a contact, as JSON (PDPA access)", "contacts:read",
                       _ok("Export", {"type": "object", "required": ["contact", "conversations"]}),
                       parameters=[_path_id("contact_id", "Contact id.")], errors=("404",)),
        },
        "/api/admin/analytics": {
            "get": _op("Volumes, resolution without a person, escalation reasons, first-response time",
                       "analytics:read",
                       _ok("Report", {"type": "object", "required": ["from", "to", "messages", "by_channel",
                                                                      "by_language", "escalation_reasons"]}),
                       parameters=[_query("from", {"type": "string", "format": "date"},
                                          "First UTC day (default: 30 days ago)."),
                                   _query("to", {"type": "string", "format": "date"},
                                          "Last UTC day (default: today).")],
                       errors=("400",)),
        },
    }
    paths["/metrics"] = {
        "get": _op("Prometheus metrics (text exposition format)", "analytics:read",
                   {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}),
    }
    if tickets:
        paths["/api/admin/tickets"] = {
            "get": _op("List tickets", "tickets:read",
                       _ok("Tickets", {"type": "object", "required": ["tickets"], "properties": {
                           "tickets": {"type": "array", "items": _TICKET}}}),
                       parameters=[_query("status", {"type": "string", "maxLength": 20}, "Only this status."),
                                   _query("priority", {"type": "string", "maxLength": 16}, "Only this priority."),
                                   _query("assignee", {"type": "string", "maxLength": 32}, "Only this assignee id."),
                                   _LIMIT],
                       errors=("400",)),
        }
        number = {"name": "number", "in": "path", "required": True,
                  "description": "The ticket's number, as in #123 (what the staff group and `supportlah tickets "
                                 "list` show).",
                  "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "example": 123}
        paths["/api/admin/tickets/{number}"] = {
            "get": _op("One ticket with its history", "tickets:read",
                       _ok("Ticket", {"type": "object", "required": ["ticket"], "properties": {"ticket": {
                           **_TICKET, "properties": {**_TICKET["properties"], "events": {
                               "type": "array", "items": {"type": "object"}}}}}}),
                       parameters=[number], errors=("400", "404")),
            "patch": _op("Change a ticket's status, priority or assignee", "tickets:write",
                         _ok("Updated", {"type": "object", "required": ["ticket"], "properties": {"ticket": _TICKET}}),
                         parameters=[number],
                         body={"required": True, "description": "Only the fields to change.",
                               "content": {"application/json": {
                                   "schema": {
                                       "type": "object", "minProperties": 1, "additionalProperties": False,
                                       "properties": {
                                           "status": {"type": "string", "maxLength": 20,
                                                      "description": "open, claimed, waiting_customer, resolved "
                                                                     "or closed"},
                                           "priority": {"type": "string", "maxLength": 16,
                                                        "description": "normal, high or urgent"},
                                           "assignee_id": {"type": ["string", "null"], "maxLength": 32},
                                           "assignee_name": {"type": ["string", "null"], "maxLength": 200}}},
                                   "examples": {
                                       "resolve": {"summary": "Resolve it", "value": {"status": "resolved"}},
                                       "assign": {"summary": "Give it to someone, urgently",
                                                  "value": {"assignee_id": "42", "assignee_name": "Mei Ling",
                                                            "priority": "urgent"}}}}}},
                         errors=("400", "404", "409")),
        }
        paths["/api/admin/tickets/{number}/reply"] = {
            "post": _op("Reply to the ticket's customer (as staff do from the console or the staff group)",
                        "tickets:write",
                        _ok("Queued: the reply goes out through the pipeline", {
                            "type": "object", "required": ["message_id", "duplicate", "client_id"], "properties": {
                                "message_id": {"type": "string"}, "duplicate": {"type": "boolean"},
                                "client_id": {"type": "string"}}}, status="202"),
                        parameters=[{"name": "number", "in": "path", "required": True, "description": "Ticket number.",
                                     "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"}}],
                        body={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["text"], "additionalProperties": False,
                            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 4000},
                                           "client_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$",
                                                         "description": "Your id for this reply: sending it "
                                                                        "again is one reply."}}}}}},
                        errors=("400", "404")),
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "supportlah admin API", "version": "1",
                 "description": "Manage the knowledge base, tickets and customer data. Authenticate with "
                                "`Authorization: Bearer <key>`; create keys with `supportlah admin create-key "
                                "--scopes …`.\n\n| scope | allows |\n| --- | --- |\n"
                                + "\n".join(f"| `{scope}` | {SCOPE_MEANINGS[scope]} |" for scope in SCOPES)},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
        },
    }


def swagger_ui_assets() -> Path:
    """Swagger UI's files as the ``swagger-ui-py`` package ships them (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: reinstall supportlah")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>supportlah admin API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
  <script src="/api/docs/assets/swagger-ui-bundle.js" defer></script>
  <script src="/api/docs/init.js" defer></script>
</head>
<body>
  <noscript>This page needs JavaScript; the description itself is <a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
  <div id="swagger-ui"></div>
</body>
</html>
"""

DOCS_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: false,
  });
});
"""
# Swagger UI sets inline styles; everything else stays 'self' (no CDN, no inline script).
DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
