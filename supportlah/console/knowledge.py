"""Owner pages for the knowledge base: documents, uploads, chunks, Q&A entries, and "Try it".

Uploads, deletions and re-indexing go through :class:`supportlah.admin.knowledge.KnowledgeFiles`,
the same code the admin API uses. A Q&A entry is a small Markdown document (``qa-….md``,
category ``qa``) in the upload folder, so retrieval treats it like any other document.
"Try it" asks the customer-facing agent as a new customer would, without recording anything.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Protocol
from urllib.parse import quote

from aiohttp import web

from config.types import AgentRequest, Reply
from rag.catalog import DocumentInfo
from supportlah.admin.audit import AuditLog
from supportlah.admin.knowledge import KnowledgeError, KnowledgeFiles, read_upload
from supportlah.console.auth import SIGNED_IN, Gate
from supportlah.console.html import Markup, button_form, hidden, join, render, when
from supportlah.console.web import flash, redirect, signed_in_page

QA_CATEGORY = "qa"
MAX_QUESTION, MAX_ANSWER = 300, 4000
_ID = r"{document_id:[A-Za-z0-9_-]{1,64}}"


class Answerer(Protocol):
    async def answer(self, request: AgentRequest, on_delta=None) -> Reply: ...  # noqa: ANN001


class KnowledgePages:
    def __init__(self, *, gate: Gate, files: KnowledgeFiles, agent: Answerer, audit: AuditLog) -> None:
        self._gate = gate
        self._files = files
        self._agent = agent
        self._audit = audit

    def routes(self) -> list[web.RouteDef]:
        def owner(handler):  # noqa: ANN001, ANN202
            return self._gate.guard(handler, owner=True)

        return [
            web.get("/console/knowledge", owner(self.knowledge_page)),
            web.get("/console/knowledge/documents", owner(self.documents_fragment)),
            web.post("/console/knowledge/upload", owner(self.upload)),
            web.post("/console/knowledge/qa", owner(self.add_qa)),
            web.get(f"/console/knowledge/{_ID}", owner(self.chunks_page)),
            web.post(f"/console/knowledge/{_ID}/delete", owner(self.delete)),
            web.post(f"/console/knowledge/{_ID}/reindex", owner(self.reindex)),
            web.get("/console/try", owner(self.try_page)),
            web.post("/console/try", owner(self.try_ask)),
        ]

    # ------------------------------------------------------------------ documents
    async def knowledge_page(self, request: web.Request) -> web.Response:
        csrf = request[SIGNED_IN].csrf_token
        documents = await self._files.catalog.list_documents()
        body = render(_KNOWLEDGE, documents=_documents_table(documents, csrf), csrf=hidden("csrf", csrf),
                      question=request.query.get("question", "")[:MAX_QUESTION],
                      message=flash(request), max_mb=f"{self._files.limits.max_bytes / 2**20:.0f}")
        return signed_in_page(request, "Knowledge", body, active="knowledge")

    async def documents_fragment(self, request: web.Request) -> web.Response:
        documents = await self._files.catalog.list_documents()
        return web.Response(text=_documents_table(documents, request[SIGNED_IN].csrf_token), content_type="text/html")

    async def upload(self, request: web.Request) -> web.Response:
        """One file per request (the page sends each dropped file on its own, with its own progress bar)."""
        user = request[SIGNED_IN].user
        try:
            name, data, _fields = await read_upload(request, self._files.limits.max_bytes)
            info, status = await self._files.add(name, data)
        except KnowledgeError as exc:
            await self._audit.record(user.actor_id, "document.rejected", None, detail={"reason": exc.reason[:200]})
            return web.json_response({"error": exc.reason}, status=exc.status)
        await self._audit.record(user.actor_id, "document.upload", info.id,
                                 detail={"name": info.name, "status": status, "chunks": info.chunk_count})
        return web.json_response({"status": status, "chunks": info.chunk_count, "document": info.name,
                                  "id": info.id}, status=201)

    async def add_qa(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        question = " ".join(str(form.get("question", "")).split())
        answer = str(form.get("answer", "")).strip()
        if not question or not answer:
            return redirect("/console/knowledge?error=" + quote("Write both the question and the answer."))
        if len(question) > MAX_QUESTION or len(answer) > MAX_ANSWER:
            return redirect("/console/knowledge?error=" + quote(f"At most {MAX_QUESTION} characters for the question "
                                                             f"and {MAX_ANSWER} for the answer."))
        text = f"# {question}\n\n{answer}\n"
        try:
            info, status = await self._files.add(qa_file_name(question), text.encode(), category=QA_CATEGORY)
        except KnowledgeError as exc:
            return redirect("/console/knowledge?error=" + quote(exc.reason))
        await self._audit.record(request[SIGNED_IN].user.actor_id, "document.qa", info.id,
                                 detail={"name": info.name, "status": status})
        return redirect("/console/knowledge?done=" + quote(f"Q&A entry saved as {info.name}."))

    async def chunks_page(self, request: web.Request) -> web.Response:
        document = await self._document(request)
        chunks = await self._files.catalog.list_chunks(document.id)
        items = join(render('<li><h2>Chunk $position$heading</h2><p class="muted">$tokens tokens$page</p>'
                            '<pre class="chunk">$text</pre></li>', position=chunk.position + 1,
                            heading=f" · {chunk.heading}" if chunk.heading else "", tokens=chunk.token_count,
                            page=f" · page {chunk.page}" if chunk.page else "", text=chunk.text) for chunk in chunks)
        body = render('<p><a href="/console/knowledge">← Knowledge</a></p><h1>$name</h1>'
                      '<p>$count chunks · language $language · updated $updated</p><ol class="chunks">$items</ol>',
                      name=document.name, count=len(chunks), language=document.language or "—",
                      updated=when(document.updated_at), items=items)
        return signed_in_page(request, document.name, body, active="knowledge")

    async def delete(self, request: web.Request) -> web.StreamResponse:
        document = await self._document(request)
        await self._files.delete(document)
        await self._audit.record(request[SIGNED_IN].user.actor_id, "document.delete", document.id,
                                 detail={"name": document.name})
        return redirect("/console/knowledge?done=" + quote(f"Deleted {document.name}."))

    async def reindex(self, request: web.Request) -> web.StreamResponse:
        document = await self._document(request)
        try:
            info = await self._files.reindex(document)
        except KnowledgeError as exc:
            return redirect("/console/knowledge?error=" + quote(exc.reason))
        await self._audit.record(request[SIGNED_IN].user.actor_id, "document.reindex", document.id,
                                 detail={"name": document.name})
        return redirect("/console/knowledge?done=" + quote(f"Re-indexed {info.name}: {info.chunk_count} chunks."))

    async def _document(self, request: web.Request) -> DocumentInfo:
        document = await self._files.catalog.get(request.match_info["document_id"])
        if document is None:
            raise web.HTTPNotFound(text="No such document.")
        return document

    # ------------------------------------------------------------------ Try it
    async def try_page(self, request: web.Request) -> web.Response:
        return self._try(request, "", None)

    async def try_ask(self, request: web.Request) -> web.Response:
        question = str((await request.post()).get("question", "")).strip()[:2000]
        reply = None
        if question:
            reply = await self._agent.answer(AgentRequest(text=question, conversation_id="console-try",
                                                          contact_id="console-try"))
        return self._try(request, question, reply)

    def _try(self, request: web.Request, question: str, reply: Reply | None) -> web.Response:
        result = Markup("")
        if reply is not None:
            sources = join(render('<li title="chunk $chunk">$document</li>', chunk=s.chunk_id, document=s.document)
                           for s in reply.sources)
            verdict = (render('<p class="handoff">This would be handed to staff: $reason.</p>',
                              reason=(reply.reason or "agent decision").replace("_", " "))
                       if reply.escalate else Markup(""))
            result = render('<section class="card" aria-labelledby="answer-h" id="try-answer">'
                            '<h2 id="answer-h">The customer would get</h2><p class="text">$text</p>$verdict'
                            '<p>Confidence <strong class="confidence">$confidence</strong> · language $language</p>'
                            '<h3>Sources</h3><ul class="sources" aria-label="Sources">$sources</ul></section>',
                            text=reply.text, verdict=verdict, confidence=f"{reply.confidence:.2f}",
                            language=reply.language, sources=sources or Markup("<li>none</li>"))
        body = render(_TRY, csrf=hidden("csrf", request[SIGNED_IN].csrf_token), question=question, result=result)
        return signed_in_page(request, "Try it", body, active="try")


def qa_file_name(question: str) -> str:
    """``qa-<words of the question>.md``: readable in the document list, stable for the same question."""
    plain = unicodedata.normalize("NFKC", question).lower()
    slug = re.sub(r"[^\w]+", "-", plain, flags=re.UNICODE).strip("-_")[:80].strip("-_") or "entry"
    return f"qa-{slug}.md"


def _documents_table(documents: list[DocumentInfo], csrf: str) -> Markup:
    if not documents:
        return Markup('<div id="documents"><p class="muted">No documents yet: upload some above.</p></div>')
    rows = join(render(
        '<tr><td data-label="Document"><a href="/console/knowledge/$id">$name</a></td>'
        '<td data-label="Language">$language</td><td data-label="Chunks">$chunks</td>'
        '<td data-label="Status">$status</td><td data-label="Updated">$updated</td>'
        '<td data-label="Actions" class="actions">$reindex$delete</td></tr>',
        id=d.id, name=d.name, language=d.language or "—", chunks=d.chunk_count,
        status=("Q&A entry, indexed" if d.category == QA_CATEGORY else "indexed") if d.chunk_count else "no text",
        updated=when(d.updated_at),
        reindex=button_form(f"/console/knowledge/{d.id}/reindex", f"Re-index {d.name}", csrf, css="secondary"),
        delete=button_form(f"/console/knowledge/{d.id}/delete", f"Delete {d.name}", csrf, css="danger"))
        for d in documents)
    return render('<div id="documents"><table class="inbox"><caption class="sr-only">Documents</caption><thead><tr>'
                  '<th scope="col">Document</th><th scope="col">Language</th><th scope="col">Chunks</th>'
                  '<th scope="col">Status</th><th scope="col">Updated</th><th scope="col">Actions</th></tr></thead>'
                  '<tbody>$rows</tbody></table></div>', rows=rows)


_KNOWLEDGE = """<h1>Knowledge</h1>$message
<section class="card" aria-labelledby="upload-h"><h2 id="upload-h">Upload documents</h2>
<div id="dropzone" class="dropzone">
<p>Drop files here (PDF, Word, Markdown, text, HTML, CSV; up to $max_mb MB each), or</p>
<label for="upload-files">Choose files to upload</label>
<input id="upload-files" type="file" multiple accept=".pdf,.docx,.md,.markdown,.txt,.html,.htm,.csv">
</div>
<ul id="upload-progress" class="progress" aria-label="Upload progress"></ul>
</section>
<section class="card" aria-labelledby="docs-h"><h2 id="docs-h">Documents</h2>$documents
<p><a href="/console/websites">Add a website</a> to crawl its pages into the knowledge base.</p></section>
<section class="card" aria-labelledby="qa-h"><h2 id="qa-h">Add a Q&amp;A entry</h2>
<p class="muted">A short answer in your own words; the bot uses it like any document.</p>
<form method="post" action="/console/knowledge/qa" class="stack">$csrf
<label for="qa-question">Question</label>
<input id="qa-question" name="question" maxlength="300" required value="$question">
<label for="qa-answer">Answer</label>
<textarea id="qa-answer" name="answer" rows="4" maxlength="4000" required></textarea>
<button type="submit">Save Q&amp;A entry</button>
</form></section>"""

_TRY = """<h1>Try it</h1>
<p class="muted">Ask as a customer would: you see the answer, its sources and confidence exactly as the bot would
give them to a new customer. Nothing is recorded.</p>
<form method="post" action="/console/try" class="stack card">$csrf
<label for="try-question">Question</label>
<input id="try-question" name="question" maxlength="2000" required value="$question">
<button type="submit">Ask</button>
</form>
$result"""
