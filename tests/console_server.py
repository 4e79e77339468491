"""A `supportlah` server subprocess running this checkout's code, for the console's browser tests."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.test_browser import _wait_until_ready

REPO = Path(__file__).resolve().parent.parent
EXECUTABLE = str(Path(sys.executable).parent / "supportlah")


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Only our settings (a developer's SUPPORTLAH_* must not leak in), and this checkout on the path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUPPORTLAH_")}
    env.update({"PYTHONPATH": str(REPO), "SUPPORTLAH_DATA_DIR": str(data_dir)})
    env.update({f"SUPPORTLAH_{key.upper()}": value for key, value in settings.items()})
    return env


def cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run([EXECUTABLE, *args], input=stdin, text=True, capture_output=True,
                          cwd=env["SUPPORTLAH_DATA_DIR"], env=env, timeout=120)
    assert done.returncode == 0, done.stderr


@contextmanager
def running_server(env: dict[str, str], *args: str, base_url: str) -> Iterator[str]:
    """``supportlah ARGS`` until the block ends; ready (``/readyz`` 200) when the block starts."""
    data_dir = Path(env["SUPPORTLAH_DATA_DIR"])
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([EXECUTABLE, *args], cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(base_url, process, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
