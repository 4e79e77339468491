"""The sample knowledge base parses with our loaders and agrees with its labelled question set.

The demo, the browser test and the retrieval benchmarks all lean on this content,
so the facts they ask about must really be in the documents, in the form the
loaders produce.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rag.loaders import SUPPORTED_SUFFIXES, load_document
from rag.tokens import TokenCounter

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KB = REPO / "supportlah" / "sample_kb"
ANSWERS = REPO / "evalsets" / "sample_kb_answers.jsonl"
BUILD_SCRIPT = REPO / "scripts" / "build_sample_kb.py"

REQUIRED_FIELDS = {"id": str, "lang": str, "question": str, "answerable": bool, "expected_docs": list,
                   "must_contain": list, "kind": str}
KINDS = {"keyword", "paraphrase", "cross_lingual", "direct", "unanswerable", "followup"}
LANGUAGES = {"en", "zh", "ms", "ta"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def _document_text(path: Path) -> str:
    return "\n".join(block.text for block in load_document(path))


@pytest.fixture(scope="module")
def kb_texts() -> dict[str, str]:
    return {path.name: _document_text(path) for path in sorted(SAMPLE_KB.iterdir()) if path.is_file()}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    lines = ANSWERS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# ---------------------------------------------------------------- documents


def test_every_file_parses_into_blocks_and_every_format_is_exercised():
    files = sorted(p for p in SAMPLE_KB.iterdir() if p.is_file())
    assert {p.suffix for p in files} >= {".md", ".csv", ".html", ".txt", ".pdf", ".docx"}
    for path in files:
        assert path.suffix in SUPPORTED_SUFFIXES, path.name
        blocks = load_document(path)
        assert len(blocks) >= 5, f"{path.name} parsed into only {len(blocks)} blocks"
        assert all(block.text.strip() for block in blocks), path.name


def test_tables_become_row_records(kb_texts):
    kinds = {path.name: Counter(b.kind for b in load_document(path)) for path in SAMPLE_KB.iterdir()}
    assert kinds["price-list.csv"]["table_row"] == 29
    assert kinds["corporate-contracts.docx"]["table_row"] == 3
    assert kinds["services-and-prices.md"]["table_row"] >= 15
    assert "Plan (code): Premium (CORP-PREM)" in kb_texts["corporate-contracts.docx"]


def test_html_boilerplate_is_dropped_and_answers_kept(kb_texts):
    faq = kb_texts["faq.html"]
    for boilerplate in ("cookies", "Accept all", "Privacy Policy", "All rights reserved", "Book now", "newsletter"):
        assert boilerplate.lower() not in faq.lower(), boilerplate
    assert "What payment methods do you accept?" in faq
    assert "PayNow (UEN 201912345K)" in faq


def test_general_service_prices_sit_on_separate_rows_for_the_followup_scenario():
    """'HDB general service?' then 'and for a condo?' needs each price in its own block."""
    for name in ("services-and-prices.md", "price-list.csv", "faq-zh.md"):
        blocks = [b.text for b in load_document(SAMPLE_KB / name)]
        hdb = [t for t in blocks if "25" in t and ("HDB" in t or "组屋" in t) and "30" not in t]
        condo = [t for t in blocks if "30" in t and ("Condo" in t or "共管公寓" in t) and "$25" not in t]
        assert hdb and condo, name
    rows = {b.text for b in load_document(SAMPLE_KB / "price-list.csv")}
    assert any(r.startswith("code: GS-HDB;") and "price_sgd: 25.00" in r for r in rows)
    assert any(r.startswith("code: GS-CONDO;") and "price_sgd: 30.00" in r for r in rows)


def test_the_chinese_faq_is_mostly_chinese(kb_texts):
    text = re.sub(r"[\sA-Za-z0-9$.,:;()|%+\-（）：，。、？]", "", kb_texts["faq-zh.md"])
    assert len(CJK.findall(text)) / len(text) > 0.9


def test_knowledge_base_stays_small_enough_to_ingest_in_seconds(kb_texts):
    total = sum(TokenCounter().count(text) for text in kb_texts.values())
    assert 5_000 <= total <= 10_000, total


def test_committed_binaries_match_what_the_build_script_generates(tmp_path):
    subprocess.run([sys.executable, str(BUILD_SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("warranty-and-refunds.pdf", "corporate-contracts.docx"):
        assert _document_text(tmp_path / name) == _document_text(SAMPLE_KB / name), (
            f"{name} is stale: rerun scripts/build_sample_kb.py and commit the result"
        )


# ---------------------------------------------------------------- question set


def test_every_line_is_a_complete_question(questions):
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for q in questions:
        for field, kind in REQUIRED_FIELDS.items():
            assert isinstance(q.get(field), kind), f"{q.get('id')}: {field} must be {kind.__name__}"
        assert set(q) <= set(REQUIRED_FIELDS) | {"context"}, q["id"]
        assert q["kind"] in KINDS and q["lang"] in LANGUAGES, q["id"]
        assert q["question"].strip()
        assert q["answerable"] == (q["kind"] != "unanswerable"), q["id"]
        if q["answerable"]:
            assert q["expected_docs"] and q["must_contain"], q["id"]
        else:
            assert q["expected_docs"] == [] and q["must_contain"] == [], q["id"]
        assert ("context" in q) == (q["kind"] == "followup"), q["id"]
        if "context" in q:
            assert isinstance(q["context"], str) and q["context"].strip(), q["id"]


def test_coverage_by_language_and_kind(questions):
    assert len(questions) >= 80
    by_lang = Counter(q["lang"] for q in questions)
    for lang in ("zh", "ms", "ta"):
        assert by_lang[lang] >= 10, by_lang
        kinds = {q["kind"] for q in questions if q["lang"] == lang}
        assert {"cross_lingual", "followup", "unanswerable"} <= kinds, (lang, kinds)
    by_kind = Counter(q["kind"] for q in questions)
    assert by_kind["unanswerable"] >= 15
    assert by_kind["keyword"] >= 5 and by_kind["paraphrase"] >= 5 and by_kind["followup"] >= 3


def test_expected_documents_exist_and_contain_the_expected_strings(questions, kb_texts):
    for q in questions:
        for doc in q["expected_docs"]:
            assert doc in kb_texts, f"{q['id']}: no such sample document {doc!r}"
        for needle in q["must_contain"]:
            holders = [d for d in q["expected_docs"] if _normalise(needle) in _normalise(kb_texts[d])]
            assert holders, f"{q['id']}: {needle!r} is in none of {q['expected_docs']}"


def test_cross_lingual_questions_need_a_document_in_another_language(questions):
    for q in questions:
        if q["kind"] == "cross_lingual":
            assert "faq-zh.md" not in q["expected_docs"] or q["lang"] != "zh", q["id"]
            assert q["lang"] != "en", q["id"]


def test_near_miss_services_are_really_absent_from_the_knowledge_base(kb_texts):
    """Unanswerable questions stay unanswerable only while the KB never mentions these."""
    corpus = _normalise("\n".join(kb_texts.values()))
    for term in ("pest control", "cockroach", "termite", "refrigerator", "fridge", "solar", "washing machine",
                 "waterproofing", "cctv", "car air", "interior design", "maid", "water heater", "laptop",
                 "television", "portable", "peru", "world cup"):
        assert term not in corpus, term
