"""An LLM's answer streams into the web chat as the model writes it (real Chromium, real OpenAI SDK).

`supportlah demo` runs with ``SUPPORTLAH_LLM_BASE_URL`` pointing at the fake chat-completions
server (tests/fakes/openai_api.py, run on its own event loop in a thread), which streams a
grounded JSON answer in small deltas. The page must show the answer growing before the final
reply replaces it, and the final text must be the model's.
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.fakes.openai_api import Completion, FakeChatAPI, json_content
from tests.test_browser import (
    REPO,
    PageProbe,
    _answered,
    _ask,
    _free_port,
    _record_streaming,
    _wait_until_ready,
    browser,  # noqa: F401 - fixture
    playwright,  # noqa: F401 - fixture
    stop_process,
)

pytestmark = pytest.mark.timeout(300)

ANSWER = "A general service for an HDB flat costs $25 per unit, and our technician brings everything needed."
_SOURCE = re.compile(r'<source id="(\d+)" document="([^"]*)"[^>]*>\n(.*?)\n</source>', re.DOTALL)


def _respond(body: dict) -> Completion:
    """Cite the source that has the HDB price; without one, hand off (as a careful model would)."""
    text = "\n".join(m.get("content") or "" for m in body["messages"])
    cited = [int(n) for n, _doc, content in _SOURCE.findall(text) if "$25" in content and "HDB" in content]
    if not cited:
        return Completion(content=json_content(answer="", citations=[], confidence=0.1, needs_human=True,
                                               handoff_reason="no source"))
    return Completion(content=json_content(answer=ANSWER, citations=cited[:1], confidence=0.95,
                                           needs_human=False, handoff_reason=None), piece=4)


class FakeModelThread:
    """The fake chat API on its own loop, so the synchronous browser test can run beside it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api = FakeChatAPI()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeChatAPI:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.api.__aenter__(), self.loop).result(30)
        self.api.default(_respond)
        return self.api

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.__aexit__(None, None, None), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeChatAPI]]:
    data_dir = tmp_path_factory.mktemp("llm-demo")
    with FakeModelThread() as api:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
        env.update(SUPPORTLAH_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), SUPPORTLAH_LLM_BASE_URL=api.base_url,
                   SUPPORTLAH_LLM_API_KEY=api.api_key, SUPPORTLAH_MEMORY_REWRITE_FOLLOWUPS="false")
        log_path = data_dir / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([str(Path(sys.executable).parent / "supportlah"), "demo", "--port", str(port)],
                                       cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(base, process, log_path)
            yield base, api
        finally:
            stop_process(process)


def test_an_llm_answer_streams_into_the_page_as_it_is_written(browser: Browser, llm_server):  # noqa: F811
    base, api = llm_server
    context = browser.new_context(base_url=base, viewport={"width": 420, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    probe = PageProbe(page)
    try:
        page.goto("/")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "online")
        _record_streaming(page)
        _ask(page, "How much is a general service for an HDB flat?")
        answer = _answered(page, 1)
        expect(answer.locator(".message-text")).to_have_text(ANSWER)
        replies = probe.answers()
        assert replies and replies[-1]["text"] == ANSWER and not replies[-1]["escalate"], replies
        deltas = [frame["text"] for frame in probe.of_type("delta")]
        assert len(deltas) >= 3 and "".join(deltas).strip() == ANSWER, deltas  # word by word, then whole
        assert page.evaluate("window.__sawStreamedText"), "the answer never showed partially"
        assert api.requests and api.requests[-1]["stream"] is True
        assert not probe.problems, probe.problems
    finally:
        context.close()
