"""Quality numbers, taken exactly as a reader reproduces them: by running the eval commands.

* ``supportlah eval retrieval DATASET --json`` on the XQuAD sets (en, zh, zh→en; read from
  ``--datasets``, never copied into the repository) and on every knowledge base's labelled
  questions (document-level relevance);
* ``supportlah eval answers SET --json`` on every knowledge base: the sample business's
  (``evalsets/sample-kb``), the two written for this (``evalsets/bakery``,
  ``evalsets/tuition-centre``) and the shared development set (``--evalsets``, read in place).

Each business is reported on its own, never pooled: a method that only works on one of them
shows. Each command's JSON is stored as it was printed, with the command line, in
``bench/results/retrieval_quality.json`` and ``bench/results/answers_quality.json``, and
checked against the bars the project holds itself to: hybrid at least
max(BM25, dense) − 0.01 nDCG@10 on every set, and Recall@5 ≥ 0.9 per language on every
knowledge base. Embeddings of the XQuAD corpora are cached under ``--data-dir``.

    python -m bench.quality [--datasets /work/shared/datasets] [--evalsets /work/shared/evalsets]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, child_env, machine, pyplot, save_plot, table, write_result

XQUAD_SETS = ("xquad-en", "xquad-zh", "xquad-zh2en")
KB_SETS = ("evalsets/sample-kb", "evalsets/bakery", "evalsets/tuition-centre")
SHARED_KB_SETS = ("physio-clinic",)
HYBRID_SLACK = 0.01
RECALL_FLOOR = 0.9


def supportlah(args: list[str], data_dir: Path, timeout: float = 3600) -> tuple[dict, float, str]:
    """Run one ``supportlah`` command from the repository root; returns (its JSON, seconds, the command line)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "supportlah.cli", "--data-dir", str(data_dir), *args], cwd=ROOT,
                            env=child_env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"supportlah {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), round(time.perf_counter() - started, 1), "supportlah " + " ".join(args)


def hybrid_check(methods: dict) -> dict:
    best_arm = max(methods["bm25"]["ndcg@10"], methods["dense"]["ndcg@10"])
    return {"hybrid_ndcg@10": methods["hybrid"]["ndcg@10"], "best_arm_ndcg@10": best_arm,
            "ok": methods["hybrid"]["ndcg@10"] >= best_arm - HYBRID_SLACK}


def run(args: argparse.Namespace) -> tuple[dict, dict]:
    info = machine()
    retrieval: dict[str, dict] = {}
    for name in XQUAD_SETS:
        path = args.datasets / name
        if not path.is_dir():
            retrieval[name] = {"skipped": f"{path} not found (pass --datasets)"}
            continue
        report, seconds, command = supportlah(["eval", "retrieval", str(path), "--json"], args.data_dir)
        retrieval[name] = {"command": command.replace(str(args.datasets), "$DATASETS"), "seconds": seconds,
                           "report": report, "check": hybrid_check(report["methods"])}
        print(f"  {name}: {report['methods']}", flush=True)
    answers: dict[str, dict] = {}
    for path in knowledge_bases(args):
        name = path.name
        report, seconds, command = supportlah(["eval", "retrieval", str(path), "--json"], args.data_dir)
        per_language = {lang: block["methods"] for lang, block in report["by_lang"].items()}
        retrieval[name] = {
            "command": _portable(command, args), "seconds": seconds, "report": report,
            "check": {**hybrid_check(report["methods"]),
                      "recall@5_by_lang": {lang: m["hybrid"]["recall@5"] for lang, m in per_language.items()},
                      "recall_floor": RECALL_FLOOR,
                      "recall_ok": all(m["hybrid"]["recall@5"] >= RECALL_FLOOR for m in per_language.values())},
        }
        print(f"  {name}: {report['methods']}", flush=True)
        report, seconds, command = supportlah(["eval", "answers", str(path), "--json"], args.data_dir)
        answers[name] = {"command": _portable(command, args), "seconds": seconds, "report": report}
        print(f"  answers {name}: {report['overall']}", flush=True)
    return (
        {"name": "retrieval_quality", "machine": info, "hybrid_slack": HYBRID_SLACK, "sets": retrieval},
        {"name": "answers_quality", "machine": info, "sets": answers},
    )


def knowledge_bases(args: argparse.Namespace) -> list[Path]:
    """The repository's question sets, then the shared development sets that are present."""
    shared = [args.evalsets / name for name in SHARED_KB_SETS if (args.evalsets / name).is_dir()]
    return [ROOT / name for name in KB_SETS] + shared


def _portable(command: str, args: argparse.Namespace) -> str:
    return (command.replace(str(args.evalsets), "$EVALSETS").replace(str(args.datasets), "$DATASETS")
            .replace(str(ROOT) + "/", ""))


def report_retrieval(data: dict) -> str:
    rows = []
    for name, entry in data["sets"].items():
        if "skipped" in entry:
            rows.append([name, None, None, None, None, None, entry["skipped"]])
            continue
        methods = entry["report"]["methods"]
        for method, scores in methods.items():
            rows.append([name, entry["report"]["n_queries"], method, scores["ndcg@10"], scores["recall@5"],
                         scores["mrr@10"], ""])
    return table(["set", "queries", "method", "nDCG@10", "Recall@5", "MRR@10", "note"], rows)


ANSWER_COLUMNS = ("answered_correctly", "answered_wrong", "false_escalation", "handled", "citations_any_expected")
ANSWER_HEADERS = ("correct", "wrong", "false hand-off", "handled (negatives)", "cites an expected doc")


def answer_rows(report: dict) -> list[list]:
    rows = [["overall", report["overall"]["n"], *(report["overall"][c] for c in ANSWER_COLUMNS)]]
    rows += [[f"lang {k}", v["n"], *(v[c] for c in ANSWER_COLUMNS)] for k, v in report["by_lang"].items()]
    rows += [[f"kind {k}", v["n"], *(v[c] for c in ANSWER_COLUMNS)] for k, v in report["by_kind"].items()]
    return rows


def report_answers(data: dict) -> str:
    parts = []
    for name, entry in data["sets"].items():
        parts.append(f"{name}:\n" + table(["group", "questions", *ANSWER_HEADERS], answer_rows(entry["report"])))
    return "\n\n".join(parts)


def plot_retrieval(data: dict) -> Path:
    plt = pyplot()
    sets = [n for n, e in data["sets"].items() if "report" in e]
    methods = sorted({m for n in sets for m in data["sets"][n]["report"]["methods"]},
                     key=["bm25", "dense", "hybrid", "hybrid+rerank"].index)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = [data["sets"][n]["report"]["methods"].get(method, {}).get("ndcg@10", 0.0) for n in sets]
        bars = ax.bar([x + i * width for x in range(len(sets))], values, width, label=method)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks([x + width * (len(methods) - 1) / 2 for x in range(len(sets))], sets)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("nDCG@10")
    ax.set_title("retrieval quality by method")
    ax.legend(fontsize=8, loc="lower left")
    return save_plot(fig, "retrieval_quality")


def plot_answers(data: dict) -> Path:
    plt = pyplot()
    names = list(data["sets"])
    series = {"correct": "answered_correctly", "wrong": "answered_wrong", "false hand-off": "false_escalation",
              "handled (negatives)": "handled"}
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(series)
    for i, (label, key) in enumerate(series.items()):
        values = [data["sets"][n]["report"]["overall"][key] or 0.0 for n in names]
        bars = ax.bar([x + i * width for x in range(len(names))], values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks([x + width * 1.5 for x in range(len(names))], names)
    ax.set_ylim(0, 1.15)
    ax.set_title("answers per knowledge base (offline, extractive)")
    ax.legend(fontsize=8)
    return save_plot(fig, "answers_quality")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="retrieval and answer quality via the eval commands")
    p.add_argument("--datasets", type=Path, default=Path(os.environ.get("SUPPORTLAH_BENCH_DATASETS",
                                                                        "/work/shared/datasets")),
                   help="folder holding xquad-en, xquad-zh, xquad-zh2en (BEIR format)")
    p.add_argument("--evalsets", type=Path, default=Path(os.environ.get("SUPPORTLAH_BENCH_EVALSETS",
                                                                        "/work/shared/evalsets")),
                   help="folder holding the shared development sets (physio-clinic), read in place")
    p.add_argument("--data-dir", type=Path, default=ROOT / ".supportlah" / "bench-eval",
                   help="data dir for the eval commands (keeps the embedding cache between runs)")
    return p


def main(argv: list[str] | None = None) -> tuple[dict, dict]:
    args = parser().parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    retrieval, answers = run(args)
    write_result("retrieval_quality", retrieval)
    write_result("answers_quality", answers)
    plot_retrieval(retrieval)
    plot_answers(answers)
    print(report_retrieval(retrieval))
    print()
    print(report_answers(answers))
    return retrieval, answers


if __name__ == "__main__":
    main()
