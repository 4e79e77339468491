"""The admin API's OpenAPI 3 description (served at /api/openapi.json) and a plain docs page.

Written by hand next to the handlers so the contract is reviewed like code; the fuzz
test holds the handlers to it. The docs page is rendered here from the same spec,
with every string HTML-escaped, and needs no JavaScript or CDN.
"""
from __future__ import annotations

import html

from supportlah.admin.keys import SCOPES

_ERROR = {"$ref": "#/components/schemas/Error"}
_LANGUAGES = ["en", "zh", "ms", "ta"]


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
                        body={"required": True, "content": {"multipart/form-data": {"schema": {
                            "type": "object", "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "category": {"type": "string", "maxLength": 64, "pattern": "^[\\w -]*$"},
                                "language": {"type": "string", "enum": _LANGUAGES},
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
        paths["/api/admin/tickets/{ticket_id}"] = {
            "patch": _op("Change a ticket's status, priority or assignee", "tickets:write",
                         _ok("Updated", {"type": "object", "required": ["ticket"], "properties": {"ticket": _TICKET}}),
                         parameters=[_path_id("ticket_id", "Ticket id.")],
                         body={"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "minProperties": 1, "additionalProperties": False,
                             "properties": {"status": {"type": "string", "maxLength": 20},
                                            "priority": {"type": "string", "maxLength": 16},
                                            "assignee_id": {"type": ["string", "null"], "maxLength": 32},
                                            "assignee_name": {"type": ["string", "null"], "maxLength": 200}}}}}},
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
                                "`Authorization: Bearer <key>`; create keys with `supportlah admin create-key`. "
                                f"Scopes: {', '.join(SCOPES)}."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
        },
    }


def docs_page(spec: dict) -> str:
    """A readable, script-free page listing every operation; all text escaped."""
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            params = ", ".join(f"{p['name']} ({p['in']})" for p in op.get("parameters", []))
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td>"
                "<td>{}</td></tr>".format(html.escape(method.upper()), html.escape(path), html.escape(op["summary"]),
                                          html.escape(op.get("x-required-scope", "")), html.escape(params))
            )
    info = spec["info"]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(info['title'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;text-align:left}"
        "code{font-size:.9em}</style></head><body>"
        f"<h1>{html.escape(info['title'])}</h1><p>{html.escape(info['description'])}</p>"
        "<p>Machine-readable spec: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Scope</th><th>Parameters</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )
