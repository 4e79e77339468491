"""The owner's console in real Chromium against the real demo server (one server for the module).

Flows: sign in; a web-chat customer asks for a person → the conversation is in the inbox →
staff reply from the page → the customer's page shows it; customer HTML shows as text; a staff
account cannot open the owner's pages; a forged POST without the CSRF token is refused; the
owner uploads two documents and sees them answer in Try it. Screenshots go to docs/console/ with SUPPORTLAH_TEST_SCREENSHOTS=1.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console_server import cli, running_server, server_env
from tests.test_browser import (  # noqa: F401  (browser and playwright are fixtures used by name)
    PageProbe,
    _answered,
    _ask,
    _free_port,
    browser,
    playwright,
)

# The README's console pictures are refreshed on request (SUPPORTLAH_TEST_SCREENSHOTS=1), so a plain
# test run leaves the checkout as it found it.
SHOTS = (Path(__file__).resolve().parent.parent / "docs" / "console" if os.environ.get("SUPPORTLAH_TEST_SCREENSHOTS")
         else Path(tempfile.gettempdir()) / "supportlah-console-shots")
PASSWORD = "correct horse battery"
OWNER, STAFF = "owner@chillpro.example", "mei@chillpro.example"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`supportlah demo` with an owner and a staff account made by the CLI beforehand."""
    port = _free_port()
    env = server_env(tmp_path_factory.mktemp("console-demo"))
    for email, role, name in ((OWNER, "owner", "Alex"), (STAFF, "staff", "Mei")):
        cli(env, "console", "add-user", email, "--role", role, "--name", name, stdin=f"{PASSWORD}\n")
    with running_server(env, "demo", "--port", str(port), "--no-browser", base_url=f"http://127.0.0.1:{port}") as url:
        yield url


@pytest.fixture
def context(browser: Browser, accounts: str) -> Iterator[BrowserContext]:  # noqa: F811  (fixture names)
    """A console browser; any console error (a script failing, a CSP violation, a missing asset) fails the test."""
    context = browser.new_context(base_url=accounts, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)
    errors: list[str] = []
    context.on("page", lambda page: page.on(
        "console", lambda message: errors.append(f"{message.text} {message.location.get('url', '')}")
        if message.type == "error" else None))
    yield context
    context.close()
    # The 403s are the refusals the tests ask for; a plain-text refusal has no icon, so the browser asks /favicon.ico.
    unexpected = [e for e in errors if "403" not in e and not e.endswith("/favicon.ico")]
    assert not unexpected, unexpected


def _sign_in(page: Page, email: str) -> None:
    page.goto("/console")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def _shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_web_customer_hand_off_is_answered_from_the_console(browser: Browser, context: BrowserContext,
                                                             accounts: str):  # noqa: F811
    customer_context = browser.new_context(base_url=accounts, viewport={"width": 420, "height": 800})
    customer = customer_context.new_page()
    probe = PageProbe(customer)
    customer.goto("/")
    expect(customer.locator("#connection-status")).to_have_attribute("data-state", "online")
    hostile = 'I want to talk to a person about <img src="x" onerror="alert(1)"> <b>my bill</b>'
    _ask(customer, hostile)
    _answered(customer, 1)

    staff = context.new_page()
    staff_probe = PageProbe(staff)
    _sign_in(staff, STAFF)
    staff.keyboard.press("Tab")  # keyboard users can jump past the navigation
    expect(staff.get_by_role("link", name="Skip to content")).to_be_focused()
    expect(staff.get_by_role("navigation", name="Console").get_by_role("link", name="Knowledge")).to_have_count(0)
    staff.get_by_label("Waiting for staff").check()
    row = staff.locator("#inbox-rows tbody tr").first
    expect(row).to_contain_text("waiting for staff")
    expect(row).to_contain_text("web")
    _shoot(staff, "inbox")
    link = row.get_by_role("link")
    link.focus()  # the live refresh waits while the keyboard is in the list: the focus stays put
    staff.wait_for_timeout(4_000)
    expect(link).to_be_focused()
    link.press("Enter")
    expect(staff.get_by_role("heading", name="Transcript")).to_be_visible()
    said = staff.locator(".entry-user .text").filter(has_text="my bill")
    expect(said).to_have_text(hostile)  # shown as text: no element was made from it
    expect(staff.locator(".transcript img, .transcript b")).to_have_count(0)
    expect(staff.locator(".entry-assistant .handoff").first).to_be_visible()

    staff.get_by_role("button", name="Claim").click()
    expect(staff.locator("dd.status")).to_have_text("claimed", timeout=20_000)
    staff.get_by_label("Your reply (goes to the customer on their channel)").fill("Hi, this is Mei. I can help.")
    staff.get_by_role("button", name="Send reply").click()
    expect(customer.locator(".message-staff .message-text")).to_have_text("Hi, this is Mei. I can help.",
                                                                          timeout=30_000)
    expect(staff.locator(".entry-staff .delivery")).to_have_text("sent", timeout=20_000)
    expect(staff.locator("dd.status")).to_have_text("waiting for the customer")
    staff.get_by_label("Note for the team (never sent to the customer)").fill("Asked about the bill")
    staff.get_by_role("button", name="Save note").click()
    expect(staff.locator(".notes")).to_contain_text("Asked about the bill", timeout=20_000)
    _shoot(staff, "conversation")
    _shoot(customer, "customer-sees-staff-reply")
    expect(customer.locator(".message-staff")).to_have_count(1)
    assert "Asked about the bill" not in customer.content()

    # A forged POST (no CSRF token) with the staff member's own cookie is refused.
    number = staff.locator(".facts dd").nth(3).inner_text().lstrip("#")
    forged = staff.request.post(f"/console/tickets/{number}/reply",
                                form={"text": "forged", "client_id": "forged-00001"})
    assert forged.status == 403 and "did not come from the console" in forged.text()

    # On a phone the inbox is one card per conversation, with nothing wider than the screen.
    staff.set_viewport_size({"width": 390, "height": 844})
    staff.goto("/console/inbox")
    expect(staff.locator("#inbox-rows tbody tr").first).to_be_visible()
    assert staff.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _shoot(staff, "inbox-phone")

    # Staff cannot open the owner's pages.
    for path in ("/console/knowledge", "/console/setup", "/console/try", "/console/analytics"):
        response = staff.goto(path)
        assert response is not None and response.status == 403, path
    customer_context.close()
    assert not probe.problems and not staff_probe.problems, probe.problems + staff_probe.problems


def test_owner_uploads_two_documents_and_try_it_answers_from_them(context: BrowserContext):
    page = context.new_page()
    probe = PageProbe(page)
    _sign_in(page, OWNER)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Knowledge").click()
    files = [
        {"name": "gas-top-up.md", "mimeType": "text/markdown",
         "buffer": b"# Gas top-up\n\nA gas top-up for an R32 aircon unit costs $65 and includes a leak check.\n"},
        {"name": "parking.txt", "mimeType": "text/plain",
         "buffer": b"Parking\n\nOur technicians need a visitor parking lot; the parking fee is added to the bill.\n"},
    ]
    page.get_by_label("Choose files to upload").set_input_files(files)
    progress = page.locator("#upload-progress li")
    expect(progress).to_have_count(2)
    for index in range(2):
        expect(progress.nth(index)).to_have_attribute("data-state", "done", timeout=60_000)
    expect(page.locator("#documents")).to_contain_text("gas-top-up.md")
    expect(page.locator("#documents")).to_contain_text("parking.txt")
    _shoot(page, "knowledge")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Try it").click()
    page.get_by_label("Question").fill("How much is a gas top-up for an R32 unit?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#try-answer")
    expect(answer).to_contain_text("65")
    expect(answer.get_by_role("list", name="Sources")).to_contain_text("gas-top-up.md")
    _shoot(page, "try-it")
    page.get_by_role("link", name="Setup").click()
    expect(page.get_by_role("heading", name="Checklist")).to_be_visible()
    _shoot(page, "setup")
    assert not probe.problems, probe.problems


def _customer_asks(browser: Browser, base_url: str, question: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 420, "height": 800})
    page = context.new_page()
    page.goto("/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    _ask(page, question)
    _answered(page, 1)
    return context, page


def test_a_content_gap_answered_from_analytics_answers_the_next_customer(browser: Browser, context: BrowserContext,
                                                                         accounts: str):  # noqa: F811
    question = "Do you install smart thermostats for aircon units?"
    first_context, first = _customer_asks(browser, accounts, question)
    expect(first.locator(".handoff-note")).to_have_count(1)  # the bot did not know: handed to staff
    first_context.close()

    owner = context.new_page()
    probe = PageProbe(owner)
    _sign_in(owner, OWNER)
    owner.get_by_role("navigation", name="Console").get_by_role("link", name="Analytics").click()
    gaps = owner.get_by_role("table", name="Content gaps, largest first")
    expect(gaps).to_contain_text(question)
    expect(owner.get_by_role("img", name=re.compile("Messages per day by channel"))).to_be_visible()
    _shoot(owner, "analytics")
    gaps.get_by_role("link", name=f"Write an answer to: {question}").click()
    expect(owner.get_by_label("Question")).to_have_value(question)
    owner.get_by_label("Answer").fill("Yes: we install Wi-Fi smart thermostats for split units from $120.")
    owner.get_by_role("button", name="Save Q&A entry").click()
    expect(owner.get_by_role("status")).to_contain_text("Q&A entry saved")
    assert not probe.problems, probe.problems

    next_context, customer = _customer_asks(browser, accounts, question)
    answer = customer.locator(".message-assistant").first
    expect(answer.locator(".message-text")).to_contain_text("$120")
    expect(answer.locator(".handoff-note")).to_have_count(0)
    expect(answer.locator(".source").first).to_contain_text("qa-do-you-install-smart-thermostats")
    next_context.close()


@pytest.fixture(scope="module")
def website(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A small static website on localhost (Python's own HTTP server, in a thread)."""
    root = tmp_path_factory.mktemp("website")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (root / "index.html").write_text('<html><body><h1>Sunrise Laundry</h1><a href="prices.html">Prices</a> '
                                     '<a href="private/rota.html">Rota</a></body></html>')
    (root / "prices.html").write_text("<html><body><h1>Prices</h1><p>Ironing a shirt at Sunrise Laundry costs "
                                      "$3.</p></body></html>")
    (root / "private").mkdir()
    (root / "private" / "rota.html").write_text("<html><body>Staff rota</body></html>")
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    thread.join(timeout=5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


def test_a_website_is_crawled_and_a_changed_page_is_resynced(context: BrowserContext, website):  # noqa: ANN001
    url, root = website
    owner = context.new_page()
    probe = PageProbe(owner)
    _sign_in(owner, OWNER)
    owner.goto("/console/knowledge")
    owner.get_by_role("link", name="Add a website").click()
    owner.get_by_label("Start address").fill(url)
    owner.get_by_label("Re-sync").select_option(label="Daily")
    owner.get_by_role("button", name="Add and crawl").click()
    expect(owner.get_by_role("status")).to_contain_text("2 pages, 2 added", timeout=60_000)
    _shoot(owner, "websites")

    owner.goto("/console/try")
    owner.get_by_label("Question").fill("How much does ironing a shirt cost at Sunrise Laundry?")
    owner.get_by_role("button", name="Ask").click()
    expect(owner.locator("#try-answer")).to_contain_text("$3")

    (root / "prices.html").write_text("<html><body><h1>Prices</h1><p>Ironing a shirt at Sunrise Laundry costs "
                                      "$4.</p></body></html>")
    owner.goto("/console/websites")
    owner.get_by_role("button", name=f"Sync {url} now").click()
    expect(owner.get_by_role("status")).to_contain_text("2 pages, 1 updated, 1 unchanged", timeout=60_000)
    owner.goto("/console/try")
    owner.get_by_label("Question").fill("How much does ironing a shirt cost at Sunrise Laundry?")
    owner.get_by_role("button", name="Ask").click()
    expect(owner.locator("#try-answer")).to_contain_text("$4")
    assert not probe.problems, probe.problems
