"""`supportlah eval answers`: labelled questions through the real pipeline, scored, offline."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from agent.evaluation import LabelledQuestion, score_answer, summarize_answers
from supportlah.cli import sample_kb_path
from tests.fakes.openai_api import Completion, FakeChatAPI, json_content

CLI = [sys.executable, "-m", "supportlah.cli"]
OFFLINE = ["unshare", "-rn"]

QUESTIONS = [
    {"id": "en-1", "lang": "en", "question": "What does GS-CONDO cost?", "answerable": True,
     "expected_docs": ["services-and-prices.md"], "must_contain": ["$30"], "kind": "keyword"},
    {"id": "en-2", "lang": "en", "question": "and for a landed house?", "answerable": True,
     "expected_docs": ["services-and-prices.md"], "must_contain": ["$35"], "kind": "followup",
     "context": "How much is a general service for a condominium?"},
    {"id": "en-3", "lang": "en", "question": "Can you repair my refrigerator? It stopped cooling.",
     "answerable": False, "expected_docs": [], "must_contain": [], "kind": "unanswerable"},
]
RATES = {"answered_correctly", "answered_wrong", "false_escalation", "citations_all_expected",
         "citations_any_expected", "handled"}


def run(args: list[str], data_dir: Path, *, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
           "SUPPORTLAH_DATA_DIR": str(data_dir)}
    return subprocess.run([*OFFLINE, *CLI, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=data_dir.parent)


def test_three_questions_against_a_tiny_knowledge_base(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    shutil.copy(sample_kb_path() / "services-and-prices.md", kb / "services-and-prices.md")
    labelled = tmp_path / "three.jsonl"
    labelled.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")

    result = run(["eval", "answers", str(labelled), "--kb", str(kb), "--json"], tmp_path / "data")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"file", "n_questions", "answerer", "overall", "by_lang", "by_kind", "questions"}
    assert report["file"] == "three.jsonl" and report["n_questions"] == 3 and report["answerer"] == "extractive"
    overall = report["overall"]
    assert set(overall) == {"n", "n_answerable", "n_unanswerable"} | RATES
    assert (overall["n"], overall["n_answerable"], overall["n_unanswerable"]) == (3, 2, 1)
    outcomes = {q["id"]: q for q in report["questions"]}
    assert outcomes["en-1"]["correct"] and outcomes["en-1"]["cited_docs"] == ["services-and-prices.md"]
    assert "$30" in outcomes["en-1"]["answer"]
    assert outcomes["en-2"]["correct"], outcomes["en-2"]  # asked after its context turn, as the same customer
    assert outcomes["en-3"]["escalated"] and not outcomes["en-3"]["correct"]  # handed off, nothing invented
    assert overall["answered_correctly"] == 1.0 and overall["false_escalation"] == 0.0
    assert overall["handled"] == 1.0 and overall["citations_all_expected"] == 1.0
    assert set(report["by_lang"]) == {"en"} and set(report["by_kind"]) == {"keyword", "followup", "unanswerable"}
    assert report["by_kind"]["unanswerable"]["answered_correctly"] is None  # nothing answerable in that group


_SOURCE = re.compile(r'<source id="(\d+)" document="([^"]*)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
_CODE = re.compile(r"\b[A-Z]{2,}-[A-Z]{2,}\b")


def quoting_model(body: dict) -> Completion:
    """A model that answers a question naming a service code with the source line giving its price,
    citing that source, and hands anything else to a person."""
    question = body["messages"][-1]["content"]
    codes = _CODE.findall(question)
    for message in body["messages"]:
        for number, _document, text in _SOURCE.findall(message.get("content") or ""):
            for line in text.splitlines():
                if codes and codes[0] in line and "$" in line:
                    return Completion(content=json_content(answer=line.strip(" -|*"), citations=[int(number)],
                                                           confidence=0.9, needs_human=False, handoff_reason=None))
    return Completion(content=json_content(answer="Let me check with the team.", citations=[], confidence=0.1,
                                           needs_human=True, handoff_reason="not in the sources"))


async def test_with_an_llm_configured_the_model_answers(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    shutil.copy(sample_kb_path() / "services-and-prices.md", kb / "services-and-prices.md")
    labelled = tmp_path / "two.jsonl"
    labelled.write_text(json.dumps(QUESTIONS[0]) + "\n" + json.dumps(QUESTIONS[2]) + "\n", encoding="utf-8")
    async with FakeChatAPI() as llm:
        llm.default(quoting_model)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
               "SUPPORTLAH_DATA_DIR": str(tmp_path / "data"), "SUPPORTLAH_LLM_BASE_URL": llm.base_url,
               "SUPPORTLAH_LLM_API_KEY": llm.api_key}
        process = await asyncio.create_subprocess_exec(
            *CLI, "eval", "answers", str(labelled), "--kb", str(kb), "--json", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 600)
        assert process.returncode == 0, err.decode()
        assert llm.errors == [] and len(llm.requests) >= 2
    report = json.loads(out)
    assert report["answerer"] == "llm:gpt-4o-mini"
    outcomes = {q["id"]: q for q in report["questions"]}
    assert outcomes["en-1"]["correct"] and "$30" in outcomes["en-1"]["answer"]
    assert outcomes["en-1"]["cited_docs"] == ["services-and-prices.md"]
    assert outcomes["en-3"]["escalated"] and report["overall"]["handled"] == 1.0


def test_a_malformed_question_file_names_the_line(tmp_path: Path):
    labelled = tmp_path / "bad.jsonl"
    labelled.write_text(json.dumps(QUESTIONS[0]) + "\n" + json.dumps({"id": "x", "lang": "en"}) + "\n")
    result = run(["eval", "answers", str(labelled)], tmp_path / "data", timeout=120)
    assert result.returncode == 1
    assert "bad.jsonl:2" in result.stderr and "question" in result.stderr
    assert "Traceback" not in result.stderr


def test_scoring_rules():
    question = LabelledQuestion(id="q", lang="en", question="price?", answerable=True,
                                expected_docs=("a.md", "b.csv"), must_contain=("$30", "Condo"), kind="keyword")
    right = score_answer(question, {"answer": "GS-CONDO: $30 per unit (condo)", "escalate": False,
                                    "sources": [{"document": "a.md"}, {"document": "a.md"}]})
    assert right.correct and right.cited_docs == ("a.md",) and right.citations_all_expected
    stray = score_answer(question, {"answer": "$30 for a condo", "escalate": False,
                                    "sources": [{"document": "a.md"}, {"document": "z.txt"}]})
    assert stray.correct and not stray.citations_all_expected and stray.citations_any_expected
    missing = score_answer(question, {"answer": "$25 for a condo", "escalate": False, "sources": []})
    assert not missing.correct and missing.missing == ("$30",)
    handed_off = score_answer(question, {"answer": "Let me get a colleague: $30 condo", "escalate": True,
                                         "sources": [{"document": "a.md"}]})
    assert not handed_off.correct  # an escalated reply is never counted as answered
    summary = summarize_answers([right, stray, missing, handed_off])
    assert summary["answered_correctly"] == 0.5 and summary["answered_wrong"] == 0.25
    assert summary["false_escalation"] == 0.25 and summary["handled"] is None
    assert summary["citations_all_expected"] == round(1 / 3, 4) and summary["citations_any_expected"] == round(2 / 3, 4)
