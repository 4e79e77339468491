"""The web chat in a real browser against the real demo server.

`supportlah demo` runs as a subprocess (sample knowledge base ingested, embedded
mode, no LLM configured) and Debian's Chromium drives the page through Playwright.
Install the browser with ``apt-get install -y chromium``; never ``playwright install``.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, Playwright, WebSocket, expect, sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SAMPLE_DOCUMENTS = {p.name for p in (REPO / "supportlah" / "sample_kb").iterdir() if p.is_file()}
BUSINESS_NAME = "ChillPro Aircon & Home Services"
STARTUP_TIMEOUT = 120.0
ANSWER_TIMEOUT_MS = 45_000

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_ready(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`supportlah demo` exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"`supportlah demo` not ready after {STARTUP_TIMEOUT:.0f}s:\n{_log_tail(log_path)}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("browser-demo")
    port = _free_port()
    # Only our settings: a developer's SUPPORTLAH_* (say, an LLM URL) must not leak in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUPPORTLAH_")}
    env["SUPPORTLAH_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(REPO)  # the checkout under test, not the venv's installed copy
    executable = Path(sys.executable).parent / "supportlah"
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        # cwd is the temp dir so a stray .env in the checkout is not read either.
        process = subprocess.Popen(
            [str(executable), "demo", "--port", str(port), "--no-browser"],
            cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, process, log_path)
        yield base_url
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get update && apt-get install -y chromium`")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


class PageProbe:
    """What the page did that the DOM alone does not show: socket frames, dialogs, script errors."""

    def __init__(self, page: Page) -> None:
        self.frames: list[dict] = []
        self.problems: list[str] = []
        page.on("websocket", self._watch_socket)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"dialog opened (injected script ran?): {dialog.message}")
        dialog.dismiss()

    def _watch_socket(self, socket_: WebSocket) -> None:
        socket_.on("framereceived", lambda payload: self.frames.append(json.loads(payload)))

    def of_type(self, kind: str) -> list[dict]:
        return [frame for frame in self.frames if frame.get("type") == kind]

    def answers(self) -> list[dict]:
        """Reply frames from the assistant (not notices or staff messages)."""
        return [frame for frame in self.of_type("reply") if frame.get("role", "assistant") == "assistant"]


@pytest.fixture
def chat_page(browser: Browser, server: str) -> Iterator[tuple[Page, PageProbe]]:
    context = browser.new_context(base_url=server, viewport={"width": 420, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    probe = PageProbe(page)
    yield page, probe
    context.close()
    assert not probe.problems, probe.problems


def _record_streaming(page: Page) -> None:
    """Remember whether an assistant bubble ever showed partial text before its final reply."""
    page.evaluate(
        """() => {
            window.__sawStreamedText = false;
            new MutationObserver(() => {
                const bubble = document.querySelector('.message-streaming .message-text');
                if (bubble && bubble.textContent.length > 0) window.__sawStreamedText = true;
            }).observe(document.getElementById('messages'),
                       {subtree: true, childList: true, characterData: true});
        }"""
    )


def _ask(page: Page, question: str) -> None:
    page.get_by_label("Your message").fill(question)
    page.keyboard.press("Enter")
    expect(page.locator(".message-user .message-text").last).to_have_text(question)


def _answered(page: Page, bubbles: int) -> Locator:
    """Wait until at least ``bubbles`` assistant bubbles exist and nothing is streaming or pending.

    An answer may be followed by further assistant messages (an after-hours note after a
    hand-off, say), so this waits for "at least", never "exactly".
    """
    assistant = page.locator(".message-assistant")
    expect(assistant.nth(bubbles - 1)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".message-streaming, .message-pending")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#typing")).to_be_hidden(timeout=ANSWER_TIMEOUT_MS)
    return assistant.nth(bubbles - 1)


CONVERSATION = ".message-user .message-text, .message-assistant .message-text"


def test_chat_answers_from_the_sample_kb_hands_off_off_topic_and_survives_a_reload(chat_page):
    page, probe = chat_page
    page.goto("/")
    expect(page.locator("#business-name")).to_have_text(BUSINESS_NAME)
    expect(page).to_have_title(f"Chat with {BUSINESS_NAME}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    _record_streaming(page)

    # 1. A question the sample KB answers streams in and cites a sample document.
    question = "How much is a general service for an HDB flat?"
    _ask(page, question)
    answer = _answered(page, 1)
    replies = probe.answers()
    assert len(replies) == 1 and replies[0]["escalate"] is False, replies
    expect(answer.locator(".message-text")).to_have_text(replies[0]["text"])
    assert "25" in replies[0]["text"]
    deltas = probe.of_type("delta")
    assert deltas and all(d["message_id"] == replies[0]["message_id"] for d in deltas)
    assert page.evaluate("window.__sawStreamedText"), "the answer never showed partially before the final reply"
    assert probe.of_type("ack")[0]["message_id"] == replies[0]["message_id"]
    for notice in (f for f in probe.of_type("reply") if f.get("role") == "system"):
        expect(page.locator(".message-system .message-text").filter(has_text=notice["text"])).to_have_count(1)
    sources = answer.locator(".source")
    expect(sources.first).to_be_visible()
    names = sources.all_text_contents()
    assert names and set(names) <= SAMPLE_DOCUMENTS, names
    assert {"services-and-prices.md", "price-list.csv", "faq-zh.md"} & set(names), names
    assert sources.first.get_attribute("title").startswith("chunk ")

    # 2. Off-topic: a hand-off, not a made-up answer.
    _ask(page, "What is the capital of Peru?")
    _answered(page, 2)
    handoff = page.locator(".message-assistant").filter(has=page.locator(".handoff-note"))
    expect(handoff).to_have_count(1)
    expect(handoff.locator(".sources")).to_be_hidden()
    peru = [f for f in probe.answers() if f["message_id"] != replies[0]["message_id"]]
    assert any(f["escalate"] for f in peru), peru
    assert all("lima" not in f["text"].lower() and not f["sources"] for f in peru), peru
    handoff_text = next(f["text"] for f in peru if f["escalate"])

    # 3. A reload keeps the visitor id and shows the server's transcript again.
    visitor_id = page.evaluate("localStorage.getItem('supportlah.visitor_id')")
    page.reload()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    assert page.evaluate("localStorage.getItem('supportlah.visitor_id')") == visitor_id
    transcript = page.request.get(f"/api/chat/history?visitor_id={visitor_id}").json()["messages"]
    expected = [m["text"] for m in transcript if m["role"] in ("user", "assistant")]
    assert expected[:4] == [question, replies[0]["text"], "What is the capital of Peru?", handoff_text]
    expect(page.locator(CONVERSATION)).to_have_text(expected)
    assert page.locator(".message-assistant").first.locator(".source").all_text_contents() == names
    # The hand-off keeps its "passed to our team" note after the reload.
    expect(page.locator(".message-assistant").filter(has=page.locator(".handoff-note"))).to_have_count(1)


def test_html_typed_by_the_visitor_is_shown_as_text(chat_page):
    page, probe = chat_page
    page.goto("/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    message = 'Is <b>x</b> <img src="nope" onerror="alert(1)"> covered by the warranty?'
    _ask(page, message)
    bubble = page.locator(".message-user .message-text").last
    assert "&lt;b&gt;x&lt;/b&gt;" in bubble.inner_html()
    _answered(page, 1)
    expect(page.locator("#messages b, #messages img")).to_have_count(0)
    page.reload()
    expect(page.locator(".message-user .message-text").first).to_have_text(message)
    expect(page.locator("#messages b, #messages img")).to_have_count(0)


def test_falls_back_to_http_when_websockets_are_blocked(chat_page):
    page, probe = chat_page
    # A proxy that accepts the upgrade and drops it at once: the page must switch to POST /api/chat.
    page.route_web_socket(re.compile(r"/ws/chat"), lambda route: route.close())
    page.goto("/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "fallback")
    _ask(page, "How much is a chemical wash for a condo?")
    answer = _answered(page, 1)
    expect(answer.locator(".message-text")).to_contain_text("90")
    names = answer.locator(".source").all_text_contents()
    assert names and set(names) <= SAMPLE_DOCUMENTS, names
    assert probe.frames == []


def test_greeting_and_examples_open_the_chat_and_an_example_asks_its_question(chat_page):
    page, probe = chat_page
    page.goto("/")
    expect(page.locator("#greeting")).to_contain_text(BUSINESS_NAME)
    examples = page.get_by_role("button").filter(has_text="?")
    expect(page.locator(".example").first).to_be_visible()
    config = page.request.get("/api/chat/config").json()
    assert config["examples"] and page.locator(".example").all_text_contents() == config["examples"]
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    question = config["examples"][0]
    examples.filter(has_text=question).first.click()
    expect(page.locator(".message-user .message-text").last).to_have_text(question)
    _answered(page, 1)
    expect(page.locator("#examples")).to_be_hidden()
    page.reload()  # a conversation under way starts with its transcript, not the examples
    expect(page.locator(".message-user .message-text").first).to_have_text(question)
    expect(page.locator("#examples")).to_be_hidden()
    expect(page.locator("#greeting")).to_contain_text(BUSINESS_NAME)


def test_the_counter_shows_the_limit_and_a_long_message_is_refused_not_cut(chat_page):
    page, probe = chat_page
    page.goto("/")
    limit = page.request.get("/api/chat/config").json()["max_message_chars"]
    counter = page.locator("#char-count")
    box = page.get_by_label("Your message")
    box.fill("Hello")
    expect(counter).to_have_text(f"5 / {limit:,}")
    expect(counter).to_have_attribute("data-over", "false")
    pasted = "x" * (limit + 12)
    box.fill(pasted)
    expect(counter).to_have_attribute("data-over", "true")
    expect(counter).to_contain_text("too long by 12 characters")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    assert box.input_value() == pasted  # nothing was cut silently
    page.keyboard.press("Enter")
    expect(page.locator("#chat-error")).to_contain_text(f"longer than {limit:,} characters")
    expect(page.locator(".message-user")).to_have_count(0)
    box.fill("x" * limit)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_my_data_is_a_readable_summary_with_a_download(chat_page):
    page, probe = chat_page
    page.goto("/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
    _ask(page, "Do you service Daikin units?")
    _answered(page, 1)
    page.get_by_role("button", name="My data").click()
    panel = page.get_by_role("region", name="The data we hold about you")
    expect(panel).to_be_visible()
    expect(panel.locator("dt").filter(has_text="Your messages")).to_have_count(1)
    expect(panel.locator("dd").nth(2)).to_have_text("1")
    expect(panel).to_contain_text("Do you service Daikin units?")
    assert "{" not in panel.inner_text()  # a summary, not raw JSON
    with page.expect_download() as download_info:
        panel.get_by_role("button", name="Download a copy (JSON)").click()
    download = download_info.value
    assert download.suggested_filename.startswith("my-data-") and download.suggested_filename.endswith(".json")
    copy = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    visitor_id = page.evaluate("localStorage.getItem('supportlah.visitor_id')")
    assert copy["contact"]["channel_user_id"] == visitor_id
    assert "Do you service Daikin units?" in [m["text"] for c in copy["conversations"] for m in c["messages"]]
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()
