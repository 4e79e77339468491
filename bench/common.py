"""Shared pieces of the benchmarks: percentiles, tables, result files, plots, machine facts.

Every benchmark writes ``bench/results/<name>.json`` (numbers plus the machine and
load they were taken under) and ``bench/results/<name>.png``, and prints a table.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


def percentile_ms(seconds: Sequence[float], q: float) -> float | None:
    """The q-th percentile of durations given in seconds, in milliseconds (None if empty)."""
    if not len(seconds):
        return None
    return round(float(np.percentile(np.asarray(seconds, dtype=np.float64), q)) * 1000.0, 2)


def latency_summary(seconds: Sequence[float]) -> dict:
    return {"n": len(seconds), "p50_ms": percentile_ms(seconds, 50), "p90_ms": percentile_ms(seconds, 90),
            "p99_ms": percentile_ms(seconds, 99),
            "mean_ms": round(float(np.mean(seconds)) * 1000.0, 2) if len(seconds) else None}


def machine() -> dict:
    """What the numbers were measured on, including how busy the machine already was."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _git_commit(),
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_result(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_result(name: str) -> dict | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def save_plot(fig, name: str) -> Path:  # noqa: ANN001 - a matplotlib Figure
    """Lay out, write ``bench/results/<name>.png`` and free the figure; returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def pyplot():  # noqa: ANN201 - matplotlib.pyplot, imported lazily with the file-only backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal too)."""
    cells = [[_cell(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: ours without SUPPORTLAH_* (no developer .env leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def run_benchmark(name: str, parser, run, plot, report, argv: list[str] | None) -> dict:  # noqa: ANN001
    """The shared ``main`` of every benchmark: parse, run, write the result and the plot, print the table."""
    import asyncio

    data = asyncio.run(run(parser().parse_args(argv)))
    write_result(name, data)
    plot(data)
    print(report(data))
    return data
