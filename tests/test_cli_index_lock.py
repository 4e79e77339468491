"""`supportlah ask` / `search` next to a running `serve` on the same data dir: the embedded index
belongs to the server, so the CLI says so in one line and asks nothing (before, every search
failed and the failure opened a high-priority system_error ticket)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.harness import wait_http
from tests.test_cli import run
from tests.test_e2e_production import _free_port

ROOT = Path(__file__).resolve().parent.parent


async def test_cli_says_the_index_is_held_by_the_server_and_opens_no_ticket(tmp_path: Path):
    data_dir = tmp_path / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    env.update(SUPPORTLAH_DATA_DIR=str(data_dir), SUPPORTLAH_PORT=str(port), PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "supportlah.cli", "serve"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)  # the server has opened its index
        for command in (["ask", "How much is a general service?"], ["search", "general service"]):
            result = run(command, data_dir, env={"PYTHONPATH": str(ROOT)})
            assert result.returncode == 1, result.stderr
            assert "cannot open the knowledge-base index" in result.stderr
            assert "POST /api/chat" in result.stderr, "it says how to ask instead"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    with sqlite3.connect(data_dir / "supportlah.db") as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM inbound_messages").fetchone() == (0,)
