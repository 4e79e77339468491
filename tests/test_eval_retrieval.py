"""`supportlah eval retrieval` as a user runs it, offline: BEIR folders and labelled question files."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from agent.evaluation import documents_in_order, mean_scores, score_any_relevant
from supportlah.cli import sample_kb_path
from tests.fakes.cohere_api import FakeCohereAPI

CLI = [sys.executable, "-m", "supportlah.cli"]
OFFLINE = ["unshare", "-rn"]  # a network namespace with no interface up: proves nothing is downloaded
METRICS = {"ndcg@10", "recall@5", "mrr@10"}

PASSAGES = {
    "p0": ("Aircon_Cleaning", "A general service of a split aircon costs 25 dollars per fan coil and takes 40 minutes."),
    "p1": ("Plumbing", "We replace leaking kitchen taps and unclog blocked toilet bowls within the same day."),
    "p2": ("Electrical", "Our licensed electricians install ceiling fans and replace faulty power sockets."),
    "p3": ("Opening_Hours", "The hotline is open from 8 am to 8 pm every day, including public holidays."),
    "p4": ("Payment", "Customers pay by PayNow, credit card or cash after the technician finishes the job."),
    "p5": ("Warranty", "Every chemical overhaul carries a ninety day workmanship warranty on the repaired unit."),
    "p6": ("Service_Area", "Technicians travel island-wide in Singapore; Sentosa jobs add a thirty dollar fee."),
    "p7": ("Gas", "Refrigerant top-up with R32 or R410A gas is charged per unit after a pressure test."),
    "p8": ("Cancellation", "Appointments can be rescheduled free of charge up to 24 hours before the visit."),
    "p9": ("Installation", "New aircon installation includes copper piping, trunking and disposal of old units."),
    "p10": ("Pets", "Our cat adoption drive pairs rescued kittens with families in Tampines."),
    "p11": ("Weather", "The monsoon season brings heavy afternoon thunderstorms to Singapore in December."),
}
QUERIES = {  # id -> (text, relevant passage)
    "q0": ("how long does a general service of an aircon take", "p0"),
    "q1": ("my kitchen tap is leaking", "p1"),
    "q2": ("can I pay with PayNow", "p4"),
    "q3": ("what warranty does a chemical overhaul have", "p5"),
    "q4": ("开放时间是几点到几点", "p3"),  # Chinese: "what are the opening hours" — no shared term with p3
}


def run(args: list[str], data_dir: Path, *, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
           "SUPPORTLAH_DATA_DIR": str(data_dir)}
    return subprocess.run([*OFFLINE, *CLI, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=data_dir.parent)


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": pid, "title": title, "text": text}) + "\n" for pid, (title, text) in PASSAGES.items()))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n" for qid, (text, _) in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{qid}\t{pid}\t1\n" for qid, (_, pid) in QUERIES.items()))
    return root


def test_beir_folder_json_has_exactly_the_documented_shape(tmp_path: Path):
    dataset = write_beir(tmp_path / "tiny-beir")
    result = run(["eval", "retrieval", str(dataset), "--json"], tmp_path / "data")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"dataset", "n_queries", "methods"}
    assert report["dataset"] == "tiny-beir" and report["n_queries"] == len(QUERIES)
    assert set(report["methods"]) == {"bm25", "dense", "hybrid"}  # no Cohere key: no hybrid+rerank
    for scores in report["methods"].values():
        assert set(scores) == METRICS and all(0.0 <= v <= 1.0 for v in scores.values())
    bm25, dense, hybrid = (report["methods"][m] for m in ("bm25", "dense", "hybrid"))
    # The Chinese question shares no term with its English passage: BM25 scores 0 on it, whatever it does
    # on the four English ones; the multilingual dense arm finds it, and hybrid keeps what both arms know.
    assert bm25["recall@5"] <= 0.8
    assert dense["recall@5"] == 1.0
    assert hybrid["ndcg@10"] >= max(bm25["ndcg@10"], dense["ndcg@10"]) - 0.01
    assert hybrid["recall@5"] == 1.0
    assert (tmp_path / "data" / "eval-cache").is_dir()  # embeddings cached for the next run


async def _eval_with_cohere(dataset: Path, data_dir: Path, cohere: FakeCohereAPI) -> tuple[int, str, str]:
    """The CLI as a child process (the fake Cohere API keeps serving on this event loop meanwhile)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
           "SUPPORTLAH_DATA_DIR": str(data_dir), "SUPPORTLAH_COHERE_API_KEY": cohere.api_key,
           "SUPPORTLAH_COHERE_BASE_URL": cohere.base_url}
    process = await asyncio.create_subprocess_exec(*CLI, "eval", "retrieval", str(dataset), "--json", env=env,
                                                   cwd=data_dir.parent, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 600)
    return process.returncode, out.decode(), err.decode()


async def test_with_a_cohere_key_hybrid_plus_rerank_is_measured_and_a_fallback_fails_loudly(tmp_path: Path):
    dataset = write_beir(tmp_path / "tiny-beir")
    async with FakeCohereAPI() as cohere:
        code, out, err = await _eval_with_cohere(dataset, tmp_path / "data", cohere)
        assert code == 0, err
        report = json.loads(out)
        assert set(report["methods"]) == {"bm25", "dense", "hybrid", "hybrid+rerank"}
        assert set(report["methods"]["hybrid+rerank"]) == METRICS
        assert len(cohere.requests) == len(QUERIES) and cohere.errors == []
        assert all(r["top_n"] == 10 and len(r["documents"]) == len(PASSAGES) for r in cohere.requests)

        cohere.fail_next(500, times=len(QUERIES))  # Cohere down: the local order would be passed off as Cohere's
        code, out, err = await _eval_with_cohere(dataset, tmp_path / "data", cohere)
        assert code == 1 and out == ""
        assert "the Cohere reranker failed and the local order was used ({'error': 5})" in err


def test_labelled_file_is_judged_per_document_language_and_kind(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("services-and-prices.md", "faq-zh.md", "service-areas-and-hours.txt"):
        shutil.copy(sample_kb_path() / name, kb / name)
    questions = [
        {"id": "en-1", "lang": "en", "question": "What does GS-CONDO cost?", "answerable": True,
         "expected_docs": ["services-and-prices.md"], "must_contain": ["$30"], "kind": "keyword"},
        {"id": "en-2", "lang": "en", "question": "And to Sentosa?", "answerable": True,
         "expected_docs": ["service-areas-and-hours.txt"], "must_contain": ["$30"], "kind": "followup",
         "context": "Do you charge a transport fee for Jurong West?"},
        {"id": "zh-1", "lang": "zh", "question": "冷气一般保养多少钱？", "answerable": True,
         "expected_docs": ["faq-zh.md", "services-and-prices.md"], "must_contain": ["25"], "kind": "direct"},
        {"id": "en-3", "lang": "en", "question": "Do you do pest control?", "answerable": False,
         "expected_docs": [], "must_contain": [], "kind": "unanswerable"},
    ]
    labelled = tmp_path / "questions.jsonl"
    labelled.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")

    result = run(["eval", "retrieval", str(labelled), "--kb", str(kb), "--json"], tmp_path / "data")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "questions" and report["n_queries"] == 3  # the unanswerable one has no judgement
    assert set(report["methods"]) == {"bm25", "dense", "hybrid"}
    assert set(report["by_lang"]) == {"en", "zh"} and report["by_lang"]["en"]["n_queries"] == 2
    assert set(report["by_kind"]) == {"keyword", "followup", "direct"}
    for block in [report, *report["by_lang"].values(), *report["by_kind"].values()]:
        for scores in block["methods"].values():
            assert set(scores) == METRICS
    assert report["methods"]["hybrid"]["recall@5"] == 1.0  # three documents: each question's is in the top 5
    assert not (tmp_path / "data" / "index").exists()  # --kb never touches the configured knowledge base


def test_a_folder_that_is_not_beir_is_one_clear_error(tmp_path: Path):
    (tmp_path / "not-beir").mkdir()
    (tmp_path / "not-beir" / "corpus.jsonl").write_text("")
    result = run(["eval", "retrieval", str(tmp_path / "not-beir")], tmp_path / "data", timeout=120)
    assert result.returncode == 1
    assert "is not a BEIR folder: queries.jsonl is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_document_level_scoring_counts_the_first_expected_document():
    ranked = documents_in_order(["b.md", "b.md", "a.csv", "c.txt", "a.csv"])
    assert ranked == ["b.md", "a.csv", "c.txt"]
    second = score_any_relevant(ranked, ["a.csv", "c.txt"])  # first hit at rank 2; the second one adds nothing
    assert second == {"ndcg@10": 1 / 1.584962500721156, "recall@5": 1.0, "mrr@10": 0.5}
    assert score_any_relevant(ranked, ["z.pdf"]) == {"ndcg@10": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    assert mean_scores([second, score_any_relevant(ranked, ["b.md"])]) == {
        "ndcg@10": round((0.6309297535714575 + 1.0) / 2, 4), "recall@5": 1.0, "mrr@10": 0.75}
