"""CLI start-up: `supportlah --help`, `kb list` and `ask` against `python -c pass`, in the same run.

Each round runs every command once, in turn, so a busy machine slows them all alike; the
first round warms the page cache and is left out ("warm machine"). `ask` runs the whole
pipeline (extractive answerer) over the sample knowledge base, ingested once before.

    python -m bench.cli_startup [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (child_env, latency_summary, machine, pyplot, python_module_command, run_benchmark,
                          save_plot, table)

NAME = "cli_startup"
QUESTION = "How much is a general service for an HDB flat?"
TARGETS_S = {"--help": 0.5, "ask": 2.0}


def _commands() -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": python_module_command("supportlah.cli", "--help"),
        "kb list": python_module_command("supportlah.cli", "kb", "list"),
        "ask": python_module_command("supportlah.cli", "ask", QUESTION),
    }


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (after one warm-up round)")
    return parser


async def run(args: argparse.Namespace) -> dict:
    from supportlah.profile import sample_kb_path

    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        workdir = Path(tmp)
        env = child_env(SUPPORTLAH_DATA_DIR=str(workdir / "data"))
        _timed(python_module_command("supportlah.cli", "ingest", "-q", str(sample_kb_path())), env, workdir)
        commands = _commands()
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.rounds + 1):
            for name, command in commands.items():
                seconds = _timed(command, env, workdir)
                if round_ > 0:
                    samples[name].append(seconds)
    baseline = statistics.median(samples["python -c pass"])
    rows = {}
    for name, seconds in samples.items():
        median = statistics.median(seconds)
        rows[name] = {**latency_summary(seconds), "median_s": round(median, 3),
                      "over_python_s": round(median - baseline, 3),
                      "target_s": TARGETS_S.get(name), "meets_target": median < TARGETS_S[name]
                      if name in TARGETS_S else None}
    return {"machine": info, "rounds": args.rounds, "question": QUESTION, "commands": rows}


def plot(data: dict) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    names = list(data["commands"])
    medians = [data["commands"][n]["median_s"] for n in names]
    ax.barh(names, medians, color=["#999999", "#0b6bcb", "#0b6bcb", "#0b6bcb"])
    for name, target in TARGETS_S.items():
        ax.plot([target, target], [names.index(name) - 0.4, names.index(name) + 0.4], color="#b3261e")
    ax.set_xlabel("seconds (median of warm runs; red: target)")
    ax.invert_yaxis()
    ax.set_title("supportlah CLI start-up")
    save_plot(fig, NAME)


def report(data: dict) -> str:
    rows = [[name, r["median_s"], r["p90_ms"] / 1000, r["over_python_s"], r["target_s"],
             {True: "yes", False: "no", None: ""}[r["meets_target"]]] for name, r in data["commands"].items()]
    return table(["command", "median s", "p90 s", "over `python -c pass` s", "target s", "met"], rows)


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    main()
