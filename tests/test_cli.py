"""The `supportlah` command as a user runs it: JSON shapes, errors, and no network at all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from supportlah.cli import sample_kb_path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "supportlah.cli"]
OFFLINE = ["unshare", "-rn"]  # a new network namespace with no interfaces up: no network at all


def run(args: list[str], data_dir: Path, *, prefix: list[str] | None = None, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    # PYTHONPATH: the checkout under test, not whatever copy the venv has installed.
    full_env = {**base, "PYTHONPATH": str(REPO), "SUPPORTLAH_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run([*(prefix or []), *CLI, *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=data_dir.parent)


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory) -> Path:
    """The sample knowledge base ingested once, offline, for the read-only commands below."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    result = run(["ingest", str(sample_kb_path()), "--quiet"], data_dir, prefix=OFFLINE)
    assert result.returncode == 0, result.stderr
    assert "7 added" in result.stdout and "0 failed" in result.stdout
    return data_dir


def test_search_json_shape_offline(sample_data_dir: Path):
    result = run(["search", "GS-CONDO general service condominium price", "-k", "3", "--json"], sample_data_dir,
                 prefix=OFFLINE)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(set(h) == {"document", "chunk_id", "score", "text"} for h in hits)
    assert hits[0]["document"] in {"services-and-prices.md", "price-list.csv"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_ask_json_shape_answer_and_honest_handoff_offline(sample_data_dir: Path):
    answered = run(["ask", "How much is a general service for an HDB flat?", "--json", "--user", "cli-a"],
                   sample_data_dir, prefix=OFFLINE)
    assert answered.returncode == 0, answered.stderr
    body = json.loads(answered.stdout)
    assert {"answer", "language", "confidence", "escalate", "reason", "sources"} <= set(body)
    assert body["escalate"] is False and "$25" in body["answer"] and body["language"] == "en"
    assert body["sources"] and set(body["sources"][0]) >= {"document", "chunk_id", "score"}
    assert body["sources"][0]["document"] in {"services-and-prices.md", "price-list.csv"}

    peru = json.loads(run(["ask", "What is the capital of Peru?", "--json", "--user", "cli-b"], sample_data_dir,
                          prefix=OFFLINE).stdout)
    assert peru["escalate"] is True and peru["reason"] == "low_confidence" and "Lima" not in peru["answer"]


def test_ingest_is_idempotent_and_kb_commands_work(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Hours\n\nWe open 9am to 6pm, Monday to Saturday.\n")
    data_dir = tmp_path / "data"
    first = run(["ingest", str(docs), "--quiet", "--category", "policies"], data_dir, prefix=OFFLINE)
    assert first.returncode == 0 and "1 added" in first.stdout, first.stderr
    again = run(["ingest", str(docs), "--quiet"], data_dir, prefix=OFFLINE)
    assert "0 added, 0 updated, 1 unchanged" in again.stdout and "0 embedded" in again.stdout
    (docs / "hours.md").write_text("# Hours\n\nWe open 10am to 7pm, Monday to Sunday.\n")
    changed = run(["ingest", str(docs), "--quiet"], data_dir, prefix=OFFLINE)
    assert "1 updated" in changed.stdout
    listed = json.loads(run(["kb", "list", "--json"], data_dir).stdout)
    assert [(d["name"], d["category"]) for d in listed] == [("hours.md", "policies")]
    stats = json.loads(run(["kb", "stats", "--json"], data_dir).stdout)
    assert stats["documents"] == 1 and stats["indexed_chunks"] == stats["chunks"] >= 1
    assert run(["kb", "delete", "hours.md"], data_dir).returncode == 0
    missing = run(["kb", "delete", "hours.md"], data_dir)
    assert missing.returncode == 1 and "no document named" in missing.stderr
    assert json.loads(run(["kb", "list", "--json"], data_dir).stdout) == []


def test_bad_settings_and_bad_arguments_fail_clearly(tmp_path: Path):
    bad = run(["config"], tmp_path / "data", env={"SUPPORTLAH_PORT": "eighty"})
    assert bad.returncode == 2 and "SUPPORTLAH_PORT" in bad.stderr
    bad = run(["config"], tmp_path / "data", env={"SUPPORTLAH_CONFIDENCE_THRESHOLD": "1.5"})
    assert bad.returncode == 2 and "SUPPORTLAH_CONFIDENCE_THRESHOLD" in bad.stderr
    missing = run(["ingest", str(tmp_path / "nope")], tmp_path / "data")
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    shown = run(["config"], tmp_path / "data", env={"SUPPORTLAH_TWILIO_AUTH_TOKEN": "super-secret"})
    assert "super-secret" not in shown.stdout and "SUPPORTLAH_TWILIO_AUTH_TOKEN=********" in shown.stdout


@pytest.mark.parametrize("command", [[], ["init"], ["demo"], ["serve"], ["admin", "list-keys"], ["tickets", "list"],
                                     ["ingest"], ["kb"], ["kb", "list"], ["search"],
                                     ["ask"], ["chat"], ["config"], ["migrate"], ["worker"],
                                     ["telegram", "set-webhook"]])
def test_every_subcommand_has_help(command: list[str], tmp_path: Path):
    result = run([*command, "--help"], tmp_path / "data")
    assert result.returncode == 0 and "usage: supportlah" in result.stdout


def test_demo_serves_answers_with_no_network(sample_data_dir: Path, tmp_path: Path):
    """`supportlah demo` inside a network namespace with only loopback: ingest, serve, answer."""
    data_dir = tmp_path / "demo-data"
    shutil.copytree(sample_data_dir, data_dir)  # already ingested: demo finds nothing to re-embed
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f"""
        import json, subprocess, sys, time, urllib.request
        server = subprocess.Popen({CLI!r} + ["demo", "--port", "8765"], stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            while "open the web chat at" not in line:
                line = server.stdout.readline()
                if not line:
                    sys.exit("demo exited")
            print(line.strip())
            request = urllib.request.Request("http://127.0.0.1:8765/api/chat", method="POST",
                data=json.dumps({{"visitor_id": "offline-visitor-1", "text": "How much is a chemical wash for a condo?"}}).encode(),
                headers={{"Content-Type": "application/json"}})
            print(urllib.request.urlopen(request, timeout=120).read().decode())
        finally:
            server.terminate()
            server.wait(30)
    """))
    result = run([], data_dir, prefix=[*OFFLINE, "sh", "-c", f"ip link set lo up && {sys.executable} {script}", "--"])
    assert result.returncode == 0, result.stderr[-2000:]
    url_line, body = result.stdout.strip().splitlines()[-2:]
    assert "http://localhost:8765/" in url_line
    reply = json.loads(body)["reply"]
    assert reply["escalate"] is False and reply["sources"], reply
    assert {s["document"] for s in reply["sources"]} & {"services-and-prices.md", "price-list.csv", "faq-zh.md"}


def test_every_lazily_loaded_command_resolves_to_its_module():
    """The CLI imports a command's module only when it runs; each entry must name a real one."""
    import importlib

    from supportlah.cli import EXTERNAL_COMMANDS

    for name, (_help, module, register, run) in EXTERNAL_COMMANDS.items():
        loaded = importlib.import_module(module)
        assert callable(getattr(loaded, register, None)) and callable(getattr(loaded, run, None)), name
