"""The chat on the owner's own site, and an honest connection state, in real Chromium.

One `supportlah demo` serves the chat with ``SUPPORTLAH_WEB_ALLOWED_ORIGINS`` set to one of two
"owner" sites, each a plain HTTP server on another localhost port (so another origin) whose page
carries the widget's one ``<script>`` tag and hostile CSS. The allowed site gets a working chat; the
other gets no bubble, no socket and no frame. Then the server is stopped with Ctrl-C (SIGINT) and
started again while a page is open.
"""
from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.test_browser import (
    BUSINESS_NAME,
    REPO,
    _answered,
    _ask,
    _free_port,
    _wait_until_ready,
    browser,  # noqa: F401 - fixture
    playwright,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.timeout(300)

HOST_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sunrise Bakery</title>
<style>
  * {{ font-size: 40px !important; color: red !important; background: yellow !important; }}
  button, iframe, div {{ display: none !important; }}
</style></head>
<body><h1>Our shop</h1>
<script>window.fetchCount = 0;</script>
<script src="{chat}/widget.js" async></script>
</body></html>
"""


class DemoServer:
    """`supportlah demo` as a process that the test can stop with Ctrl-C and start again (same port and data)."""

    def __init__(self, data_dir: Path, allowed_origin: str) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SUPPORTLAH_")}
        self.env.update(SUPPORTLAH_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO),
                        SUPPORTLAH_WEB_ALLOWED_ORIGINS=json.dumps([allowed_origin]))
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        executable = Path(__import__("sys").executable).parent / "supportlah"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(executable), "demo", "--port", str(self.port)], cwd=self.data_dir,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait_until_ready(self.url, self.process, self.log_path)

    def interrupt(self) -> None:
        """Ctrl-C, as an owner stops it in a terminal (returns at once; ``wait`` for the exit)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)

    def wait(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _site(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoServer, str, str]]:
    """(the chat server, the allowed owner site, a site that is not allowed)."""
    allowed_dir, refused_dir = tmp_path_factory.mktemp("allowed-site"), tmp_path_factory.mktemp("refused-site")
    allowed, allowed_url = _site(allowed_dir)
    refused, refused_url = _site(refused_dir)
    chat = DemoServer(tmp_path_factory.mktemp("widget-demo"), allowed_url)
    for directory in (allowed_dir, refused_dir):
        (directory / "index.html").write_text(HOST_PAGE.format(chat=chat.url), encoding="utf-8")
    try:
        chat.start()
        yield chat, allowed_url, refused_url
    finally:
        chat.kill()
        allowed.shutdown()
        refused.shutdown()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811 - the imported fixture
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def test_the_widget_on_an_allowed_site_opens_the_chat_untouched_by_the_sites_css(page: Page, sites):
    chat, allowed, _refused = sites
    page.goto(f"{allowed}/")
    bubble = page.get_by_role("button", name=f"Chat with {BUSINESS_NAME}")
    expect(bubble).to_be_visible()
    box = bubble.bounding_box()
    assert box is not None and 55 <= box["width"] <= 65, box  # the host's `* { font-size: 40px }` did not reach it
    bubble.click()
    frame = page.frame_locator(f'iframe[title="Chat with {BUSINESS_NAME}"]')
    expect(frame.locator("#business-name")).to_have_text(BUSINESS_NAME)
    expect(frame.locator("#connection-status")).to_have_attribute("data-state", "online")
    assert frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 255, 0)"
    frame.get_by_label("Your message").fill("How much is a chemical wash for a condo?")
    frame.get_by_label("Your message").press("Enter")
    expect(frame.locator(".message-assistant .message-text").first).to_contain_text("90", timeout=45_000)
    bubble.click()
    expect(page.locator("iframe")).to_be_hidden()


def test_a_site_that_is_not_allowed_gets_no_bubble_no_socket_and_no_frame(page: Page, sites):
    chat, _allowed, refused = sites
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text))
    page.goto(f"{refused}/")
    page.wait_for_load_state("networkidle")
    assert any("not available on this site" in w for w in warnings), warnings
    expect(page.locator("#supportlah-widget")).to_have_count(0)
    # The page's own scripts cannot talk to the chat either: the socket and the POST are refused by origin.
    opened = page.evaluate("""url => new Promise(resolve => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve("open");
        ws.onclose = () => resolve("closed");
    })""", f"ws://127.0.0.1:{chat.port}/ws/chat?visitor_id=refused-visitor-1")
    assert opened == "closed"
    posted = page.request.post(f"{chat.url}/api/chat", headers={"Origin": refused},
                               data={"visitor_id": "refused-visitor-1", "text": "hello"})
    assert posted.status == 403
    # Framing the chat page directly is refused by its frame-ancestors.
    page.evaluate("""src => { const f = document.createElement('iframe'); f.id = 'direct'; f.src = src;
                              document.body.appendChild(f); }""", f"{chat.url}/embed")
    page.wait_for_timeout(1500)
    expect(page.frame_locator("#direct").locator("#composer")).to_have_count(0)


def test_the_page_says_reconnecting_at_once_when_the_server_stops_and_online_when_it_is_back(page: Page, sites):
    chat, _allowed, _refused = sites
    page.goto(f"{chat.url}/")
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "online")
    page.evaluate("""() => {
        window.__states = [];
        const status = document.getElementById('connection-status');
        new MutationObserver(() => window.__states.push([status.dataset.state, performance.now()]))
            .observe(status, {attributes: true, attributeFilter: ['data-state']});
    }""")
    interrupted_at = page.evaluate("performance.now()")
    chat.interrupt()
    try:
        # Not "Online" for 46 s: the server closes the socket as it stops and the page says so at once.
        expect(status).not_to_have_attribute("data-state", "online", timeout=2_000)
        states = page.evaluate("window.__states")
        assert states[0][0] == "reconnecting" and states[0][1] - interrupted_at < 2_000, states
        expect(page.locator("#typing")).to_be_hidden()
        chat.wait()
        expect(status).to_have_attribute("data-state", "offline", timeout=20_000)  # not "sending over HTTP"
        assert "fallback" not in [state for state, _at in page.evaluate("window.__states")]
        # A message written while the server is down waits and is sent when it is back.
        _ask(page, "What are your opening hours?")
        expect(page.locator("#typing")).to_be_hidden()
    finally:
        chat.start()
    expect(status).to_have_attribute("data-state", "online", timeout=30_000)
    _answered(page, 1)
    expect(page.locator(".message-pending")).to_have_count(0)
