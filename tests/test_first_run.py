"""The README's "Make it yours" steps, run as a new owner would: after the demo, in the same folder,
with a bakery's documents this test writes. Nothing of the sample business (an aircon company) may
show up in the bakery's search results, answers, or chat page.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from supportlah.profile import SAMPLE_BUSINESS_NAME, sample_kb_path
from tests.test_browser import stop_process as _stop

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "supportlah.cli"]
SAMPLE_DOCUMENTS = {p.name for p in sample_kb_path().iterdir()}
# Words only the sample business uses: its name, its trade, its price codes.
SAMPLE_WORDS = re.compile(r"chillpro|aircon|air-con|condo|hdb|chemical|gs-|btu", re.IGNORECASE)

BAKERY_DOCS = {
    "menu.md": """# Sunrise Bakery menu

## Cakes
A whole cheesecake (8 inch) costs $42. A chocolate fudge cake costs $38. Order whole cakes two days ahead.

## Breads
Sourdough loaf $8.50, wholemeal loaf $6.00, baguette $4.20. Bread is baked fresh every morning.
""",
    "delivery.txt": """Delivery and pick-up

We deliver cakes island-wide for $12; delivery is free for orders above $80.
Pick-up is from our Tiong Bahru shop, Tuesday to Sunday, 7am to 7pm. We are closed on Mondays.
""",
}

pytestmark = pytest.mark.timeout(600)


def _readme_steps() -> list[list[str]]:
    """The `supportlah` commands of the README's "Make it yours" block, in order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Make it yours", 1)[1]
    block = section.split("<!-- make-it-yours", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].endswith("/supportlah"):
            steps.append(words[1:])
    return steps


def _env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    return {**base, "PYTHONPATH": str(REPO)}  # the checkout under test, not the venv's installed copy


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen([*CLI, *args, "--port", str(port)], cwd=cwd, env=_env(), stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, (cwd / f"server-{port}.log").read_text()
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    process.kill()
    pytest.fail(f"{args} not ready:\n{(cwd / f'server-{port}.log').read_text()}")


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_make_it_yours_after_the_demo_shows_nothing_of_the_sample_business(tmp_path: Path):
    home = tmp_path / "shop"
    home.mkdir()
    # A newcomer runs the demo first, in the folder they will keep using.
    demo, base = _start_server(["demo"], home)
    try:
        assert _get(f"{base}/api/chat/config")["business_name"] == SAMPLE_BUSINESS_NAME
    finally:
        _stop(demo)
    assert (home / ".supportlah-demo").is_dir() and not (home / ".supportlah").exists()

    docs = home / "my-docs"  # the README's first line copies the owner's files here; the test writes them
    docs.mkdir()
    for name, text in BAKERY_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")

    steps = _readme_steps()
    assert [s[0] for s in steps] == ["init", "kb", "search", "ask", "serve"], steps
    outputs: dict[str, str] = {}
    for step in steps[:-1]:
        result = _run(step, home)
        assert result.returncode == 0, (step, result.stderr)
        assert "0file" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        outputs[step[0]] = result.stdout
    assert "Sunrise Bakery" in outputs["init"] and "2 added" in outputs["init"]
    assert set(re.findall(r"^(\S+)\s+\d+\s", outputs["kb"], re.M)) == set(BAKERY_DOCS), outputs["kb"]
    assert "menu.md" in outputs["search"] and "$42" in outputs["ask"], outputs
    for name in ("kb", "search", "ask"):
        assert not SAMPLE_WORDS.search(outputs[name]), (name, outputs[name])
        assert not SAMPLE_DOCUMENTS & set(re.findall(r"[\w.-]+\.\w+", outputs[name])), outputs[name]

    # The same, as JSON, for every document the search can reach.
    search = json.loads(_run(["search", "price list services opening hours", "-k", "10", "--json"], home).stdout)
    assert search and {hit["document"] for hit in search} <= set(BAKERY_DOCS), search
    assert not any(SAMPLE_WORDS.search(hit["text"]) for hit in search), search

    server, base = _start_server(steps[-1], home)
    try:
        config = _get(f"{base}/api/chat/config")
        assert config["business_name"] == "Sunrise Bakery"
        assert [lang["code"] for lang in config["languages"]] == ["en", "zh"]
        assert config["examples"] and not any(SAMPLE_WORDS.search(q) for q in config["examples"]), config
        assert SAMPLE_BUSINESS_NAME not in config["greeting"] and "Sunrise Bakery" in config["greeting"]
        for question in ("How much is a whole cheesecake?", "How much is a chemical wash for an HDB aircon?"):
            reply = _post(f"{base}/api/chat", {"visitor_id": "bakery-visitor-1", "text": question})["reply"]
            assert not SAMPLE_WORDS.search(reply["text"].replace(question, "")), reply
            assert {s["document"] for s in reply["sources"]} <= set(BAKERY_DOCS), reply
        assert "$42" in _post(f"{base}/api/chat", {"visitor_id": "bakery-visitor-2",
                                                   "text": "How much is a whole cheesecake?"})["reply"]["text"]
    finally:
        _stop(server)

    # The demo never mixes its sample into the bakery, not even after the owner deletes a document.
    assert _run(["kb", "delete", "delivery.txt"], home).returncode == 0
    refused = _run(["--data-dir", ".supportlah", "demo"], home)
    assert refused.returncode == 1 and "data dir" in refused.stderr, refused.stderr
    listed = json.loads(_run(["kb", "list", "--json"], home).stdout)
    assert [d["name"] for d in listed] == ["menu.md"]
    # Nor does the bakery's `ingest` reach the demo's data dir.
    mixed = _run(["--data-dir", ".supportlah-demo", "ingest", "my-docs"], home)
    assert mixed.returncode == 1 and "init" in mixed.stderr
