"""The owner's console over the real app and pipeline: accounts, sign-in, CSRF, roles, the inbox,
staff replies through the staff desk (console and admin API), in both modes."""
from __future__ import annotations

import re
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from channels.messages import Channel
from escalation.models import TicketStatus
from memory.models import InboundMessageRow, ReplyRow
from supportlah.app import create_app
from supportlah.console.accounts import Accounts, hash_password, verify_password
from supportlah.console.models import Role
from tests.harness import MECHANICS, SentEvents, drain, running_container, web_message

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """A browser-less console user: a cookie jar, the CSRF token of the last page, form posts."""

    def __init__(self, client: TestClient, container) -> None:  # noqa: ANN001
        self.client, self.container = client, container
        self.csrf = ""

    async def sign_in(self, email: str, password: str = PASSWORD) -> ClientResponse:
        response = await self.client.post("/console/login", data={"email": email, "password": password},
                                          allow_redirects=False)
        if response.status == 303:
            await self.page("/console/inbox")
        return response

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, (path, response.status, await response.text())
        text = await response.text()
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return text

    async def post(self, path: str, **fields: str) -> ClientResponse:
        return await self.client.post(path, data={"csrf": self.csrf, **fields}, allow_redirects=False)


async def add_user(container, email: str, role: Role) -> None:  # noqa: ANN001
    await Accounts(container.privacy.sessions).add_user(email, role, password=PASSWORD)


@pytest.fixture
async def console(backend):
    settings = backend.settings(**MECHANICS, rate_limit_ip_per_minute=10_000, console_login_per_minute=3)
    async with running_container(settings, start_queue=False) as container:
        await add_user(container, "owner@example.com", Role.OWNER)
        await add_user(container, "staff@example.com", Role.STAFF)
        async with TestClient(TestServer(create_app(container))) as client:
            yield Console(client, container)


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$16384$8$1$") and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, None)


async def test_sign_in_sets_a_strict_http_only_cookie_and_wrong_passwords_are_rate_limited(console):
    assert (await console.client.get("/console/inbox", allow_redirects=False)).headers["Location"] \
        == "/console/login?next=/console/inbox"
    wrong = await console.sign_in("owner@example.com", "not the password")
    assert wrong.status == 401 and "do not match" in await wrong.text()
    signed_in = await console.sign_in("OWNER@example.com")
    assert signed_in.status == 303 and signed_in.headers["Location"] == "/console/inbox"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Inbox" in await console.page("/console/inbox")

    # The budget is 3 attempts a minute per address (and per account): this is the third, the fourth is refused.
    assert (await console.sign_in("staff@example.com", "guess")).status == 401
    limited = await console.sign_in("staff@example.com")  # even the right password, once over the limit
    assert limited.status == 429 and "Too many" in await limited.text()
    recent = {entry.action for entry in await console.container.privacy.audit.recent(50)}
    assert {"console.login", "console.login_failed", "console.login_limited"} <= recent


async def test_one_time_link_sets_the_password_once(console):
    accounts = Accounts(console.container.privacy.sessions)
    _user, token = await accounts.add_user("new@example.com", Role.STAFF)
    assert token is not None
    form = await console.page(f"/console/set-password?token={token}")
    assert "new@example.com" in form
    short = await console.client.post("/console/set-password", data={"token": token, "password": "short",
                                                                     "confirm": "short"})
    assert short.status == 400 and "at least 10" in await short.text()
    done = await console.client.post("/console/set-password", allow_redirects=False,
                                     data={"token": token, "password": PASSWORD, "confirm": PASSWORD})
    assert done.status == 303
    again = await console.client.get(f"/console/set-password?token={token}")
    assert again.status == 404
    assert (await console.sign_in("new@example.com")).status == 303

    forgotten = await accounts.new_link("new@example.com")  # `supportlah console set-password-link`
    assert await accounts.authenticate("new@example.com", PASSWORD) is not None  # works until the link is used
    await console.client.post("/console/set-password", data={"token": forgotten, "password": "a" * 12,
                                                             "confirm": "a" * 12})
    assert await accounts.authenticate("new@example.com", PASSWORD) is None
    assert await accounts.authenticate("new@example.com", "a" * 12) is not None


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(console):
    await console.sign_in("owner@example.com")
    await console.container.ingress.accept(web_message("visitor-csrf-1", "I want to talk to a person"))
    await drain(console.container)
    ticket = (await console.container.escalation.tickets.list())[0]
    before = await console.container.store.counts()
    forged = await console.client.post(f"/console/tickets/{ticket.number}/reply",
                                       data={"text": "hello", "client_id": "forged-0001"})
    wrong = await console.client.post(f"/console/tickets/{ticket.number}/reply",
                                      data={"text": "hello", "client_id": "forged-0002", "csrf": "x" * 43})
    assert forged.status == wrong.status == 403
    assert await console.container.store.counts() == before


async def test_staff_reply_from_the_console_reaches_the_web_customer_once(console):
    container = console.container
    events = SentEvents()
    events.attach(container, "visitor-console-1")
    await container.ingress.accept(web_message("visitor-console-1", 'I want a person <script>alert(1)</script>'))
    await drain(container)
    [ticket] = await container.escalation.tickets.list()
    assert ticket.status == TicketStatus.OPEN and ticket.channel == Channel.WEB.value

    await console.sign_in("staff@example.com")
    inbox = await console.page("/console/inbox?waiting=1")
    assert f"#{ticket.number}" in inbox and "waiting for staff" in inbox
    assert "<script>alert(1)</script>" not in inbox
    found = await console.page("/console/inbox/rows?q=alert(1)")  # search reads what customers wrote
    assert f"#{ticket.number}" in found and f"#{ticket.number}" not in await console.page("/console/inbox/rows?q=zzz")
    rows = await console.page("/console/inbox/rows?channel=telegram")
    assert f"#{ticket.number}" not in rows
    page = await console.page(f"/console/conversations/{ticket.conversation_id}")
    assert "Hand-off reason" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page

    reply = await console.post(f"/console/tickets/{ticket.number}/reply", text="Hi, Mei here. I can help.",
                               client_id="reply-000001")
    assert reply.status == 303
    twice = await console.post(f"/console/tickets/{ticket.number}/reply", text="Hi, Mei here. I can help.",
                               client_id="reply-000001")  # a double click
    assert twice.status == 303
    await drain(container)
    staff = [e for e in events.replies("visitor-console-1") if e["role"] == "staff"]
    assert [e["text"] for e in staff] == ["Hi, Mei here. I can help."]
    ticket = await container.escalation.tickets.by_number(ticket.number)
    assert ticket.status == TicketStatus.WAITING_CUSTOMER and ticket.assignee_name == "staff"
    assert ticket.assignee_id.startswith("console:") and ticket.first_response_at is not None
    live = await console.page(f"/console/conversations/{ticket.conversation_id}/live")
    assert "Hi, Mei here. I can help." in live and "state-sent" in live

    await console.post(f"/console/tickets/{ticket.number}/note", text="Customer prefers mornings",
                       client_id="note-0000001")
    await console.post(f"/console/tickets/{ticket.number}/resolve", client_id="resolve-00001")
    await drain(container)
    ticket = await container.escalation.tickets.by_number(ticket.number)
    assert ticket.status == TicketStatus.RESOLVED
    page = await console.page(f"/console/conversations/{ticket.conversation_id}")
    assert "Customer prefers mornings" in page
    assert "Customer prefers mornings" not in str(events.replies("visitor-console-1"))
    audit = {(e.actor, e.action) for e in await container.privacy.audit.recent(100)}
    actor = f"console:{ticket.assignee_id.split(':', 1)[1]}"
    assert {(actor, "console.ticket.reply"), (actor, "console.ticket.note"), (actor, "console.ticket.resolve"),
            (f"staff:{actor}", "staff.message")} <= audit


async def test_admin_api_reply_is_the_same_staff_message(console):
    container = console.container
    events = SentEvents()
    events.attach(container, "visitor-api-1")
    await container.ingress.accept(web_message("visitor-api-1", "Can I speak to a human please"))
    await drain(container)
    [ticket] = await container.escalation.tickets.list()
    key = await container.privacy.keys.create("desk", frozenset({"tickets:write"}))
    headers = {"Authorization": f"Bearer {key.token}"}
    path = f"/api/admin/tickets/{ticket.number}/reply"
    first = await console.client.post(path, json={"text": "From the API", "client_id": "api-reply-01"},
                                      headers=headers)
    assert first.status == 202, await first.text()
    again = await console.client.post(path, json={"text": "From the API", "client_id": "api-reply-01"},
                                      headers=headers)
    assert (await again.json())["duplicate"] is True
    assert (await console.client.post(path, json={"text": "  "}, headers=headers)).status == 400
    assert (await console.client.post("/api/admin/tickets/99999/reply", json={"text": "x"},
                                      headers=headers)).status == 404
    assert (await console.client.post(path, json={"text": "x"})).status == 401
    await drain(container)
    assert [e["text"] for e in events.replies("visitor-api-1") if e["role"] == "staff"] == ["From the API"]


async def test_staff_accounts_see_the_inbox_only(console):
    await console.sign_in("staff@example.com")
    inbox = await console.page("/console/inbox")
    assert 'href="/console/knowledge"' not in inbox and 'href="/console/setup"' not in inbox


async def test_staff_cannot_open_owner_pages(console):
    await console.sign_in("staff@example.com")
    for path in ("/console/knowledge", "/console/try", "/console/setup", "/console/knowledge/documents"):
        assert (await console.client.get(path)).status == 403, path
    refused = await console.client.post("/console/knowledge/qa", data={"csrf": console.csrf, "question": "q?",
                                                                       "answer": "a"})
    assert refused.status == 403
    assert await console.container.catalog.list_documents() == []


GAS = b"# Gas top-up\n\nA gas top-up for an R32 aircon unit costs $60 and includes a leak check.\n"
HOURS = b"Opening hours\n\nOur office is open Monday to Saturday, 9 am to 6 pm. Closed on Sundays.\n"


async def test_owner_uploads_documents_tries_them_and_writes_a_qa_entry(console):
    await console.sign_in("owner@example.com")
    await console.page("/console/knowledge")
    headers = {"X-CSRF-Token": console.csrf}
    for name, data in (("gas.md", GAS), ("hours.txt", HOURS)):
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        uploaded = await console.client.post("/console/knowledge/upload", data=form, headers=headers)
        assert uploaded.status == 201, await uploaded.text()
        assert (await uploaded.json())["chunks"] >= 1
    bad = aiohttp.FormData()
    bad.add_field("file", b"MZ\x90\x00binary", filename="virus.txt")
    rejected = await console.client.post("/console/knowledge/upload", data=bad, headers=headers)
    assert rejected.status in (415, 422) and "error" in await rejected.json()
    no_token = aiohttp.FormData()
    no_token.add_field("file", GAS, filename="again.md")
    assert (await console.client.post("/console/knowledge/upload", data=no_token)).status == 403

    listing = await console.page("/console/knowledge")
    assert "gas.md" in listing and "hours.txt" in listing
    tried = await console.post("/console/try", question="How much is a gas top-up?")
    text = await tried.text()
    assert tried.status == 200 and "60" in text and "gas.md" in text and "confidence" in text.lower()

    question = "Do you service ceiling cassette units?"
    before = await (await console.post("/console/try", question=question)).text()
    assert "would be handed to staff" in before
    saved = await console.post("/console/knowledge/qa", question=question,
                               answer="Yes, we service ceiling cassette units from $80 per unit.")
    assert saved.status == 303
    after = await (await console.post("/console/try", question=question)).text()
    assert "would be handed to staff" not in after and "$80" in after and "qa-do-you-service" in after
    [qa] = [d for d in await console.container.catalog.list_documents() if d.category == "qa"]
    chunks = await console.page(f"/console/knowledge/{qa.id}")
    assert "ceiling cassette" in chunks
    await console.post(f"/console/knowledge/{qa.id}/delete")
    assert qa.id not in {d.id for d in await console.container.catalog.list_documents()}


async def test_setup_lists_live_checks_and_masks_secrets(backend):
    settings = backend.settings(**MECHANICS, llm_base_url="http://127.0.0.1:9/v1", llm_api_key="sk-secret-value",
                                public_url="http://help.example.sg")  # https would make the cookie Secure
    async with running_container(settings, start_queue=False) as container:
        await add_user(container, "owner@example.com", Role.OWNER)
        async with TestClient(TestServer(create_app(container))) as client:
            console = Console(client, container)
            await console.sign_in("owner@example.com")
            page = await console.page("/console/setup")
    assert "sk-secret-value" not in page and "SUPPORTLAH_LLM_API_KEY" in page and "********" in page
    assert "Answers (LLM)" in page and "Staff group" in page and "none: hand-offs are answered here" in page
    assert "1 account(s)" in page and "after 30 days" in page
    assert "http://help.example.sg/webhooks" not in page  # no Twilio configured: no webhook to paste
    assert "! needs attention</span> <strong>Public URL" in page  # not https


async def _ask_as(container, visitor: str, text: str) -> str:  # noqa: ANN001
    accepted = await container.ingress.accept(web_message(visitor, text))
    await drain(container)
    return accepted.message_id


async def _backdate(container, message_ids: list[str], days: float) -> None:  # noqa: ANN001
    """Move messages and their replies into the past (durable resolution looks 72 hours ahead)."""
    async with container.privacy.sessions() as session, session.begin():
        for message_id in message_ids:
            row = await session.get(InboundMessageRow, message_id)
            await session.execute(update(InboundMessageRow).where(InboundMessageRow.id == message_id)
                                  .values(received_at=row.received_at - timedelta(days=days)))
            reply = await session.scalar(select(ReplyRow).where(ReplyRow.inbound_message_id == message_id))
            await session.execute(update(ReplyRow).where(ReplyRow.inbound_message_id == message_id)
                                  .values(created_at=reply.created_at - timedelta(days=days)))


async def test_analytics_figures_and_content_gaps_lead_to_an_answer(console):
    container = console.container
    await console.sign_in("owner@example.com")
    await console.page("/console/knowledge")
    form = aiohttp.FormData()
    form.add_field("file", GAS, filename="gas.md")
    assert (await console.client.post("/console/knowledge/upload", data=form,
                                      headers={"X-CSRF-Token": console.csrf})).status == 201
    answered = await _ask_as(container, "visitor-gap-a", "How much is a gas top-up for an R32 unit?")
    first = await _ask_as(container, "visitor-gap-f", "How much is a gas top-up?")
    again = await _ask_as(container, "visitor-gap-f", "And does it include a leak check?")
    await _backdate(container, [answered], days=5)
    await _backdate(container, [first, again], days=5)
    for visitor, question in (("visitor-gap-b", "Do you service ceiling cassette units?"),
                              ("visitor-gap-c", "Can you clean my ceiling cassette aircon?"),
                              ("visitor-gap-d", "What is the capital of Peru?")):
        await _ask_as(container, visitor, question)

    disliked = await container.store.load(first)
    await container.store.record_feedback(disliked.message.conversation_id, first, "press-0001", helpful=False)

    page = await console.page("/console/analytics?days=7")
    assert 'aria-label="Messages per day by channel' in page and "Hand-offs by reason" in page
    assert "low confidence" in page
    assert "50% of 2 conversations" in page, re.findall(r"Durable resolution.{0,120}", page)  # visitor a did not come back; visitor f wrote again within 72 h
    gaps = page[page.index('id="gaps-h"'):]
    cassette = gaps[gaps.index("ceiling cassette units"):]
    cassette_row = cassette[:cassette.index("</tr>")]
    assert "Can you clean my ceiling cassette aircon?" in gaps[:gaps.index("</tr>", gaps.index("ceiling cassette"))]
    assert "capital of Peru" in gaps and "capital of Peru" not in cassette_row
    assert "rated not helpful 1" in gaps and "How much is a gas top-up?" in gaps
    assert "0 / 1 (0% helpful)" in page
    link = re.search(r'href="(/console/knowledge\?question=[^"#]*ceiling[^"#]*)#qa-h"', gaps)
    assert link, gaps[:2000]
    knowledge = await console.page(link.group(1).replace("&amp;", "&"))
    assert 'value="Do you service ceiling cassette units?"' in knowledge \
        or 'value="Can you clean my ceiling cassette aircon?"' in knowledge
    await console.post("/console/knowledge/qa", question="Do you service ceiling cassette units?",
                       answer="Yes, we service and clean ceiling cassette units from $80 per unit.")
    events = SentEvents()
    events.attach(container, "visitor-gap-e")
    await _ask_as(container, "visitor-gap-e", "Do you service ceiling cassette units?")
    [reply] = [e for e in events.replies("visitor-gap-e") if e["role"] == "assistant" and e["final"]]
    assert not reply["escalate"] and "$80" in reply["text"]
    assert reply["sources"][0]["document"].startswith("qa-do-you-service-ceiling-cassette")


async def test_send_ai_draft_return_to_bot_and_reindex_from_the_console(console):
    container = console.container
    await console.sign_in("owner@example.com")
    await console.page("/console/knowledge")
    form = aiohttp.FormData()
    form.add_field("file", GAS, filename="gas.md")
    uploaded = await console.client.post("/console/knowledge/upload", data=form, headers={"X-CSRF-Token": console.csrf})
    document_id = (await uploaded.json())["id"]
    events = SentEvents()
    events.attach(container, "visitor-draft-1")
    await _ask_as(container, "visitor-draft-1", "How much is a gas top-up for R32?")
    await _ask_as(container, "visitor-draft-1", "I want to talk to a person")
    [ticket] = await container.escalation.tickets.list()
    assert ticket.draft_text and "60" in ticket.draft_text
    page = await console.page(f"/console/conversations/{ticket.conversation_id}")
    assert "AI draft (only staff see this)" in page and "Send AI draft" in page

    await console.post(f"/console/tickets/{ticket.number}/draft", client_id="draft-000001")
    await drain(container)
    staff = [e["text"] for e in events.replies("visitor-draft-1") if e["role"] == "staff"]
    assert staff == [ticket.draft_text]
    await console.post(f"/console/tickets/{ticket.number}/bot", client_id="bot-00000001")
    await drain(container)
    ticket = await container.escalation.tickets.by_number(ticket.number)
    assert ticket.status == TicketStatus.RESOLVED
    before = len(events.replies("visitor-draft-1"))
    await _ask_as(container, "visitor-draft-1", "How much is a gas top-up for R32?")  # the bot answers again
    answers = [e for e in events.replies("visitor-draft-1")[before:] if e["role"] == "assistant" and e["final"]]
    assert answers and "60" in answers[-1]["text"]

    reindexed = await console.post(f"/console/knowledge/{document_id}/reindex")
    assert reindexed.status == 303 and "Re-indexed" in await console.page(reindexed.headers["Location"])
