"""From the command line, offline: a follow-up asked in a second `supportlah ask` is understood,
because embedded-mode memory lives in the data dir's SQLite database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KB = REPO / "supportlah" / "sample_kb"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    return subprocess.run([sys.executable, "-m", "supportlah.cli", "--data-dir", str(data_dir), *args],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=280)


@pytest.mark.timeout(600)  # three cold starts and the sample KB's embeddings, on a busy machine
def test_ask_then_a_follow_up_in_a_separate_invocation_answers_about_condos(tmp_path):
    data_dir = tmp_path / "data"
    ingest = _cli(data_dir, "ingest", str(SAMPLE_KB), "--quiet")
    assert ingest.returncode == 0, ingest.stderr
    first = _cli(data_dir, "ask", "How much is a general service for an HDB flat?", "--user", "u1")
    assert first.returncode == 0, first.stderr
    assert "$25" in first.stdout and "GS-HDB" in first.stdout

    follow_up = _cli(data_dir, "ask", "and for a condo?", "--user", "u1", "--json")
    assert follow_up.returncode == 0, follow_up.stderr
    result = json.loads(follow_up.stdout)
    assert not result["escalate"]
    assert "$30 per unit" in result["answer"] and "GS-CONDO" in result["answer"]
    assert result["sources"][0]["document"] in {"services-and-prices.md", "price-list.csv"}
