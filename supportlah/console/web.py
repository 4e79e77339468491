"""The console's HTTP handlers: sign-in, the inbox and a conversation with its staff actions.

Pages are server-rendered (:mod:`supportlah.console.html`) and work as plain HTML forms;
htmx (served from ``/console/static``) refreshes the inbox and the open conversation
every few seconds. Owner-only pages (knowledge, Try it, setup) live in their own modules
and are added by :func:`supportlah.console.wiring.console_routes`.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import web

from config.languages import LANGUAGE_CODES
from escalation.models import Ticket, TicketStatus
from escalation.tickets import TicketRepository
from memory.models import ConversationMode
from supportlah.admin.audit import AuditLog
from supportlah.admin.limits import client_address
from supportlah.console.accounts import AccountError, Accounts, SignedIn
from supportlah.console.auth import COOKIE, SIGNED_IN, Gate
from supportlah.console.html import Markup, button_form, hidden, join, page, render, when
from supportlah.console.inbox import CUSTOMER_CHANNELS, ConversationView, Entry, InboxFilter, InboxReader, InboxRow
from supportlah.console.replies import Actor, InvalidStaffAction, StaffAction, StaffActions

log = logging.getLogger(__name__)

ROLE_LABELS = {"user": "Customer", "assistant": "Bot", "staff": "Staff", "system": "Notice"}
STATUS_LABELS = {TicketStatus.OPEN: "waiting for staff", TicketStatus.CLAIMED: "claimed",
                 TicketStatus.WAITING_CUSTOMER: "waiting for the customer", TicketStatus.RESOLVED: "resolved",
                 TicketStatus.CLOSED: "closed"}
STATIC = Path(str(resources.files("supportlah.console") / "static"))


class ConsolePages:
    def __init__(self, *, accounts: Accounts, gate: Gate, inbox: InboxReader, actions: StaffActions,
                 tickets: TicketRepository, audit: AuditLog, poll_seconds: int, trusted_proxy_hops: int) -> None:
        self._accounts = accounts
        self._gate = gate
        self._inbox = inbox
        self._actions = actions
        self._tickets = tickets
        self._audit = audit
        self._poll = poll_seconds
        self._hops = trusted_proxy_hops

    def routes(self) -> list[web.RouteDef]:
        guard = self._gate.guard
        return [
            web.get("/console", self.home),
            web.get("/console/", self.home),
            web.get("/console/login", self.login_form),
            web.post("/console/login", self.login),
            web.post("/console/logout", guard(self.logout)),
            web.get("/console/set-password", self.set_password_form),
            web.post("/console/set-password", self.set_password),
            web.get("/console/inbox", guard(self.inbox_page)),
            web.get("/console/inbox/rows", guard(self.inbox_rows)),
            web.get(r"/console/conversations/{conversation_id:[A-Za-z0-9_-]{1,64}}", guard(self.conversation_page)),
            web.get(r"/console/conversations/{conversation_id:[A-Za-z0-9_-]{1,64}}/live", guard(self.conversation_live)),
            web.post(r"/console/tickets/{number:\d{1,9}}/{action:[a-z]{1,16}}", guard(self.ticket_action)),
            web.static("/console/static", STATIC),
        ]

    # ------------------------------------------------------------------ sign-in
    async def home(self, request: web.Request) -> web.StreamResponse:
        return redirect("/console/inbox")

    async def login_form(self, request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
        next_path = _safe_next(request.query.get("next", ""))
        body = render(_LOGIN, error=alert(error), next=next_path)
        return _html(page("Sign in", body), status=status)

    async def login(self, request: web.Request) -> web.StreamResponse:
        _same_origin(request)
        form = await request.post()
        email, password = str(form.get("email", ""))[:254], str(form.get("password", ""))[:1024]
        if not await self._gate.login_allowed(request, email):
            await self._audit.record("console", "console.login_limited", None, remote=self._remote(request))
            return await self.login_form(request, error="Too many sign-in attempts. Wait a minute and try again.",
                                         status=429)
        user = await self._accounts.authenticate(email, password)
        if user is None:
            await self._audit.record("console", "console.login_failed", None, remote=self._remote(request))
            return await self.login_form(request, error="That e-mail and password do not match an account.",
                                         status=401)
        token, _signed_in = await self._accounts.start_session(user)
        await self._audit.record(user.actor_id, "console.login", user.id, remote=self._remote(request))
        response = redirect(_safe_next(str(form.get("next", ""))) or "/console/inbox")
        self._gate.set_cookie(response, token)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await self._accounts.end_session(request.cookies.get(COOKIE, ""))
        await self._audit.record(request[SIGNED_IN].user.actor_id, "console.logout", None,
                                 remote=self._remote(request))
        response = redirect("/console/login")
        self._gate.clear_cookie(response)
        return response

    async def set_password_form(self, request: web.Request) -> web.Response:
        return await self._set_password_page(request.query.get("token", ""))

    async def _set_password_page(self, token: str, *, error: str = "", status: int = 200) -> web.Response:
        user = await self._accounts.user_for_link(token)
        if user is None:
            body = render('<section class="card narrow"><h1>Set your password</h1>$alert'
                          '<p><a href="/console/login">Go to sign-in</a></p></section>',
                          alert=alert("This link is unknown, used already or expired: ask the owner for a new one."))
            return _html(page("Set your password", body), status=404)
        body = render(_SET_PASSWORD, error=alert(error), token=token, email=user.email)
        return _html(page("Set your password", body), status=status)

    async def set_password(self, request: web.Request) -> web.StreamResponse:
        _same_origin(request)
        form = await request.post()
        token, password = str(form.get("token", "")), str(form.get("password", ""))[:1024]
        if password != str(form.get("confirm", ""))[:1024]:
            return await self._set_password_page(token, error="The two passwords differ.", status=400)
        try:
            user = await self._accounts.set_password_with_link(token, password)
        except AccountError as exc:
            return await self._set_password_page(token, error=str(exc), status=400)
        await self._audit.record(user.actor_id, "console.password_set", user.id, remote=self._remote(request))
        raise web.HTTPSeeOther("/console/login")

    # ------------------------------------------------------------------ inbox
    async def inbox_page(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        wanted = _filter(request)
        rows = await self._inbox.rows(wanted, actor_id=signed_in.user.actor_id)
        channel_options = join(_option(value, value, wanted.channel) for value in CUSTOMER_CHANNELS)
        language_options = join(_option(value, value, wanted.language) for value in LANGUAGE_CODES)
        body = render(
            _INBOX, poll=f"every {self._poll}s", rows=_inbox_table(rows),
            waiting=_checked(wanted.waiting), mine=_checked(wanted.mine), channels=channel_options,
            languages=language_options, query=wanted.query)
        return signed_in_page(request, "Inbox", body, active="inbox")

    async def inbox_rows(self, request: web.Request) -> web.Response:
        rows = await self._inbox.rows(_filter(request), actor_id=request[SIGNED_IN].user.actor_id)
        return _html(_inbox_table(rows))

    # ------------------------------------------------------------------ a conversation
    async def conversation_page(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        view = await self._view(request)
        await self._audit.record(signed_in.user.actor_id, "console.conversation.read", view.conversation_id,
                                 remote=self._remote(request))
        ticket = view.ticket
        compose = Markup('<p class="muted">The bot is handling this conversation: there is no ticket to '
                         'answer. Staff can reply once it is handed off.</p>')
        if ticket is not None:
            compose = render(_COMPOSE, number=ticket.number, csrf=hidden("csrf", signed_in.csrf_token),
                             reply_id=hidden("client_id", _client_id()), note_id=hidden("client_id", _client_id()))
        body = render(_CONVERSATION, customer=view.customer, live=self._live(view, signed_in),
                      conversation_id=view.conversation_id, poll=f"every {self._poll}s", compose=compose,
                      error=alert(request.query.get("error", "")[:200]))
        return signed_in_page(request, f"Conversation with {view.customer}", body, active="inbox")

    async def conversation_live(self, request: web.Request) -> web.Response:
        return _html(self._live(await self._view(request), request[SIGNED_IN]))

    async def _view(self, request: web.Request) -> ConversationView:
        view = await self._inbox.conversation(request.match_info["conversation_id"])
        if view is None:
            raise web.HTTPNotFound(text="No such conversation.")
        return view

    def _live(self, view: ConversationView, signed_in: SignedIn) -> Markup:
        notes = (render('<section class="card" aria-labelledby="notes-h"><h2 id="notes-h">Notes</h2>$notes</section>',
                        notes=_notes(view)) if view.ticket is not None else Markup(""))
        return render('$ticket<section aria-labelledby="transcript-h"><h2 id="transcript-h">Transcript</h2>'
                      '<ol class="transcript">$entries</ol></section>$notes',
                      ticket=_ticket_panel(view, signed_in.csrf_token), entries=join(_entry(e) for e in view.entries),
                      notes=notes)

    async def ticket_action(self, request: web.Request) -> web.StreamResponse:
        signed_in = request[SIGNED_IN]
        try:
            action = StaffAction(request.match_info["action"])
        except ValueError as exc:
            raise web.HTTPNotFound(text="No such action.") from exc
        number = int(request.match_info["number"])
        ticket = await self._tickets.by_number(number)
        if ticket is None:
            raise web.HTTPNotFound(text=f"No ticket #{number}.")
        form = await request.post()
        user = signed_in.user
        try:
            accepted = await self._actions.submit(number, action, Actor(user.actor_id, user.name),
                                                  client_id=str(form.get("client_id", "")),
                                                  text=str(form.get("text", "")))
        except InvalidStaffAction as exc:
            return redirect(f"/console/conversations/{ticket.conversation_id}?error={quote(str(exc))}")
        if accepted is None:
            raise web.HTTPNotFound(text=f"No ticket #{number}.")
        await self._audit.record(user.actor_id, f"console.ticket.{action.value}", ticket.id,
                                 detail={"ticket": number, "message_id": accepted.message_id},
                                 remote=self._remote(request), entry_id=_audit_id(accepted.message_id))
        return redirect(f"/console/conversations/{ticket.conversation_id}")

    # ------------------------------------------------------------------ helpers
    def _remote(self, request: web.Request) -> str:
        return client_address(request, self._hops)


def signed_in_page(request: web.Request, title: str, body: Markup, *, active: str) -> web.Response:
    """A page in the console layout for the signed-in user (navigation by role, the CSRF token)."""
    signed_in = request[SIGNED_IN]
    return _html(page(title, body, user_name=signed_in.user.name, is_owner=signed_in.user.is_owner,
                      csrf=signed_in.csrf_token, active=active))


# ---------------------------------------------------------------------- rendering
def _html(body: Markup, *, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store"})


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page (a reload does not post again)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def flash(request: web.Request) -> Markup:
    """The outcome of the last action, carried in the redirect's ``?error=`` or ``?done=``."""
    if request.query.get("error"):
        return alert(request.query["error"][:300])
    if request.query.get("done"):
        return render('<p class="notice" role="status">$text</p>', text=request.query["done"][:300])
    return Markup("")


def alert(message: str) -> Markup:
    return render('<p class="alert" role="alert">$message</p>', message=message) if message else Markup("")


def _audit_id(message_id: str) -> str:
    """The audit entry of a console action: one per staff message, even when the POST is repeated."""
    return hashlib.sha256(f"console:{message_id}".encode()).hexdigest()[:32]


def _client_id() -> str:
    """A fresh id per rendered form: submitting the same form twice is one staff message."""
    return secrets.token_urlsafe(12)


def _safe_next(path: str) -> str:
    """Only paths inside the console (no other host, no scheme) are followed after sign-in."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/console/") or "//" in path or "\\" in path:
        return ""
    return path


def _same_origin(request: web.Request) -> None:
    """Sign-in forms have no session yet: refuse posts another site's page made."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="This form did not come from the console.")


def _filter(request: web.Request) -> InboxFilter:
    query = request.query
    channel = query.get("channel", "")
    language = query.get("language", "")
    return InboxFilter(waiting=query.get("waiting") == "1", mine=query.get("mine") == "1",
                       channel=channel if channel in CUSTOMER_CHANNELS else "",
                       language=language if language in LANGUAGE_CODES else "", query=query.get("q", "").strip()[:100])


def _option(value: str, label: str, selected: str) -> Markup:
    return render('<option value="$value"$selected>$label</option>', value=value, label=label,
                  selected=Markup(" selected") if value == selected else Markup(""))


def _checked(on: bool) -> Markup:
    return Markup(" checked") if on else Markup("")


def _inbox_table(rows: list[InboxRow]) -> Markup:
    if not rows:
        return Markup('<p class="muted" id="inbox-empty">No conversations match.</p>')
    body = join(render(
        '<tr class="$css"><td data-label="Customer"><a href="/console/conversations/$id">$customer</a></td>'
        '<td data-label="Channel">$channel</td><td data-label="Language">$language</td>'
        '<td data-label="Last message" class="preview">$preview</td><td data-label="Mode">$mode</td>'
        '<td data-label="Ticket">$ticket</td><td data-label="Status">$status</td>'
        '<td data-label="Priority">$priority</td><td data-label="Reply due">$due</td></tr>',
        css="waiting" if row.status in TicketStatus.WAITING_FOR_STAFF else "", id=row.conversation_id,
        customer=row.customer, channel=row.channel, language=row.language, preview=row.preview or "—",
        mode=ConversationMode.HUMAN if row.mode == ConversationMode.HUMAN else ConversationMode.BOT,
        ticket=f"#{row.ticket_number}" if row.ticket_number else "—",
        status=STATUS_LABELS.get(row.status, row.status), priority=row.priority,
        due=when(row.reply_due)) for row in rows)
    return render('<table class="inbox"><caption class="sr-only">Conversations, latest first</caption><thead><tr>'
                  '<th scope="col">Customer</th><th scope="col">Channel</th><th scope="col">Language</th>'
                  '<th scope="col">Last message</th><th scope="col">Mode</th><th scope="col">Ticket</th>'
                  '<th scope="col">Status</th><th scope="col">Priority</th><th scope="col">Reply due</th>'
                  '</tr></thead><tbody>$body</tbody></table>', body=body)


def _ticket_panel(view: ConversationView, csrf: str) -> Markup:
    ticket = view.ticket
    facts = render('<dl class="facts"><dt>Channel</dt><dd>$channel</dd><dt>Language</dt><dd>$language</dd>'
                   '<dt>Mode</dt><dd>$mode</dd>$ticket_facts</dl>', channel=view.channel, language=view.language,
                   mode="human (the bot is quiet)" if view.mode == ConversationMode.HUMAN else "bot",
                   ticket_facts=_ticket_facts(ticket) if ticket else Markup(""))
    if ticket is None:
        return render('<section class="card" aria-label="Conversation">$facts</section>', facts=facts)
    return render('<section class="card" aria-label="Ticket #$number">$facts<div class="actions">$actions</div>'
                  '$draft</section>', number=ticket.number, facts=facts, actions=_actions(ticket, csrf),
                  draft=_draft(ticket, csrf))


def _ticket_facts(ticket: Ticket) -> Markup:
    return render('<dt>Ticket</dt><dd>#$number</dd><dt>Status</dt><dd class="status">$status</dd>'
                  '<dt>Priority</dt><dd>$priority</dd><dt>Hand-off reason</dt><dd>$reason</dd>'
                  '<dt>Assigned to</dt><dd>$assignee</dd><dt>Reply due</dt><dd>$due</dd>',
                  number=ticket.number, status=STATUS_LABELS.get(ticket.status, ticket.status),
                  priority=ticket.priority, reason=ticket.reason.replace("_", " "),
                  assignee=ticket.assignee_name or "nobody yet",
                  due=when(ticket.sla_due_at) if ticket.status in TicketStatus.WAITING_FOR_STAFF else "—")


def _actions(ticket: Ticket, csrf: str) -> Markup:
    base = f"/console/tickets/{ticket.number}"
    buttons = []
    if ticket.status in TicketStatus.ACTIVE:
        if ticket.status == TicketStatus.OPEN:
            buttons.append(("claim", "Claim"))
        buttons += [("resolve", "Resolve"), ("bot", "Return to bot")]
    else:
        buttons.append(("reopen", "Reopen"))
    return join(button_form(f"{base}/{action}", label, csrf, fields={"client_id": _client_id()})
                for action, label in buttons)


def _draft(ticket: Ticket, csrf: str) -> Markup:
    if not ticket.draft_text:
        return Markup("")
    sources = ", ".join(dict.fromkeys(str(s.get("document", "")) for s in ticket.draft_sources or []))
    return render('<div class="draft"><h3>AI draft (only staff see this)</h3><p class="text">$text</p>$sources'
                  '$send</div>', text=ticket.draft_text,
                  sources=render('<p class="sources">Sources: $names</p>', names=sources) if sources else Markup(""),
                  send=button_form(f"/console/tickets/{ticket.number}/draft", "Send AI draft", csrf,
                                   fields={"client_id": _client_id()}))


def _entry(entry: Entry) -> Markup:
    details = []
    if entry.confidence is not None:
        details.append(render('<span class="confidence">confidence $value</span>', value=f"{entry.confidence:.2f}"))
    if entry.reason:
        details.append(render('<span class="handoff">handed off: $reason</span>', reason=entry.reason.replace("_", " ")))
    if entry.state and entry.role != "user":
        label = entry.state + (f" ({entry.error})" if entry.error else "")
        details.append(render('<span class="delivery state-$state">$label</span>', state=entry.state, label=label))
    sources = ""
    if entry.sources:
        names = join((render('<li title="chunk $chunk">$document</li>', chunk=s.get("chunk_id", ""),
                             document=s.get("document", "")) for s in entry.sources))
        sources = render('<ul class="sources" aria-label="Sources">$names</ul>', names=names)
    return render('<li class="entry entry-$role"><div class="meta"><span class="who">$who</span> $at $details</div>'
                  '<p class="text">$text</p>$sources</li>', role=entry.role, who=ROLE_LABELS.get(entry.role, entry.role),
                  at=when(entry.at), details=join(details, " · "), text=entry.text, sources=sources)


def _notes(view: ConversationView) -> Markup:
    if not view.notes:
        return Markup('<p class="muted">No notes yet.</p>')
    return render('<ul class="notes">$items</ul>', items=join(
        render('<li><span class="who">$who</span> $at<p class="text">$text</p></li>', who=note.actor_name or "staff",
               at=when(note.at), text=note.detail) for note in view.notes))


_LOGIN = """<section class="card narrow"><h1>Sign in</h1>$error
<form method="post" action="/console/login" class="stack">
<input type="hidden" name="next" value="$next">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></section>"""

_SET_PASSWORD = """<section class="card narrow"><h1>Set your password</h1>$error
<p>For <strong>$email</strong>. At least 10 characters.</p>
<form method="post" action="/console/set-password" class="stack">
<input type="hidden" name="token" value="$token">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required>
<label for="confirm">New password again</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="10" required>
<button type="submit">Set password</button>
</form></section>"""

_INBOX = """<h1>Inbox</h1>
<form id="filters" class="filters" method="get" action="/console/inbox" role="search" aria-label="Filter conversations"
 hx-get="/console/inbox/rows" hx-target="#inbox-rows" hx-trigger="change, input changed delay:300ms from:#q, submit">
<label class="check"><input type="checkbox" name="waiting" value="1"$waiting> Waiting for staff</label>
<label class="check"><input type="checkbox" name="mine" value="1"$mine> Mine</label>
<label for="channel">Channel</label>
<select id="channel" name="channel"><option value="">All channels</option>$channels</select>
<label for="language">Language</label>
<select id="language" name="language"><option value="">All languages</option>$languages</select>
<label for="q">Search</label><input id="q" type="search" name="q" value="$query">
<button type="submit">Filter</button>
</form>
<div id="inbox-rows" data-poll hx-get="/console/inbox/rows" hx-trigger="$poll" hx-include="#filters">$rows</div>"""

_CONVERSATION = """<p><a href="/console/inbox">← Back to the inbox</a></p>
<h1>Conversation with $customer</h1>$error
<div id="conversation-live" data-poll hx-get="/console/conversations/$conversation_id/live"
 hx-trigger="$poll">$live</div>
$compose"""

_COMPOSE = """<section class="card" aria-labelledby="reply-h"><h2 id="reply-h">Reply to the customer</h2>
<form method="post" action="/console/tickets/$number/reply" class="stack">$csrf$reply_id
<label for="reply-text">Your reply (goes to the customer on their channel)</label>
<textarea id="reply-text" name="text" rows="4" maxlength="4000" required></textarea>
<button type="submit">Send reply</button>
</form></section>
<section class="card" aria-labelledby="add-note-h"><h2 id="add-note-h">Add a note</h2>
<form method="post" action="/console/tickets/$number/note" class="stack">$csrf$note_id
<label for="note-text">Note for the team (never sent to the customer)</label>
<textarea id="note-text" name="text" rows="2" maxlength="4000" required></textarea>
<button type="submit">Save note</button>
</form></section>"""
