"""Answers on a business the code has never seen: a home bakery's documents, written here.

Nothing of this trade is in the code or in a vocabulary file (the container gets none), so
every answer below comes from what the agent reads in the documents: a Chinese question
reaching the English price list through the documents' own term table, a follow-up that only
names a new size, spreadsheet prices shown as amounts, a list quoted whole after its lead-in,
and the small talk a customer sends. Real documents, real ingestion, the real pipeline.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supportlah.conversation import ask_once
from tests.harness import MECHANICS, running_container

REPO = Path(__file__).resolve().parent.parent

CAKES = """# Cakes and prices

All prices are in Singapore dollars and before 9% GST.

## Whole cakes

| Cake | 0.5 kg | 1 kg | 2 kg |
|---|---|---|---|
| Pandan chiffon | S$28 | S$46 | S$84 |
| Ondeh-ondeh | S$32 | S$52 | S$96 |
| Gula melaka sugee | S$30 | S$49 | S$90 |

## Delivery

Delivery is available island-wide. We deliver from Tuesday to Sunday.

## Payment

We accept:
- PayNow to our UEN
- Visa and Mastercard
- cash on pickup at the shop

Orders need 3 days' notice.
"""
PRICE_LIST = """code,item,size,standard_price_sgd,member_price_sgd
CK-PAN-1,Pandan chiffon,1 kg,46.00,41.40
CK-OND-1,Ondeh-ondeh,1 kg,52.00,46.80
TP-CANDLE,Number candle,one,3.00,3.00
"""
ZH_GUIDE = """# 中文订购指南

我们的蛋糕价格请看英文版的价目表。

## 常用名称对照

| 中文 | 英文 |
|---|---|
| 班兰戚风 | Pandan chiffon |
| 椰糖苏吉蛋糕 | Gula melaka sugee |

## 自取

可以在淡滨尼门市自取，营业时间早上十点到晚上七点。
"""


@pytest.fixture
async def bakery(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    for name, text in (("cakes.md", CAKES), ("price-list.csv", PRICE_LIST), ("zh-guide.md", ZH_GUIDE)):
        (kb / name).write_text(text, encoding="utf-8")
    from config.settings import load_settings

    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **MECHANICS)  # no vocabulary file
    async with running_container(settings, start_queue=False) as container:
        report = await container.ingestor.ingest([kb])
        assert not report.failed
        yield container


async def test_a_follow_up_naming_only_a_new_size_gets_that_row(bakery):
    first = await ask_once(bakery, "How much is the 1 kg ondeh-ondeh cake?", user="size")
    assert not first["escalate"] and "52" in first["answer"]
    second = await ask_once(bakery, "and the 2 kg one?", user="size")
    assert not second["escalate"], second
    assert "96" in second["answer"] and second["sources"][0]["document"] == "cakes.md"


async def test_a_chinese_question_reaches_the_english_price_list_through_the_documents_term_table(bakery):
    reply = await ask_once(bakery, "椰糖苏吉蛋糕1公斤多少钱？", user="zh")
    assert "49" in reply["answer"], reply
    assert reply["sources"][0]["document"] == "cakes.md"


async def test_a_list_after_its_lead_in_is_quoted_whole(bakery):
    reply = await ask_once(bakery, "What payment methods do you accept?", user="pay")
    assert not reply["escalate"], reply
    for method in ("PayNow", "Visa and Mastercard", "cash on pickup"):
        assert method in reply["answer"]


async def test_small_talk_is_answered_kindly_and_cites_nothing(bakery):
    for text in ("Good morning! 🌞", "谢谢你们！蛋糕很好吃 🙏", "orh ok noted, thanks 👌", "Terima kasih, semoga maju jaya!"):
        reply = await ask_once(bakery, text, user=f"talk-{text[:3]}")
        assert not reply["escalate"] and reply["sources"] == [], (text, reply)


def test_spreadsheet_prices_are_quoted_as_amounts():
    from agent.extractive import _render
    from agent.segment import segment

    record = "code: CK-PAN-1; item: Pandan chiffon; size: 1 kg; standard_price_sgd: 46.00; member_price_sgd: 41.40"
    (unit,) = segment(record)
    assert _render(unit) == ("code: CK-PAN-1; item: Pandan chiffon; size: 1 kg; standard price sgd: S$46.00; "
                             "member price sgd: S$41.40")


def test_eval_reads_a_question_set_folder_with_earlier_turns_and_expected_behaviours(tmp_path: Path):
    """The shared development sets' layout: ``questions.jsonl`` beside ``kb/``, ``context`` as a list of
    earlier turns, ``expected_behaviour`` for the questions the KB does not answer."""
    folder = tmp_path / "bakery-set"
    (folder / "kb").mkdir(parents=True)
    (folder / "kb" / "cakes.md").write_text(CAKES, encoding="utf-8")
    rows = [
        {"id": "b-1", "lang": "en", "question": "How much is a 1 kg pandan chiffon?", "answerable": True,
         "expected_docs": ["cakes.md"], "must_contain": ["S$46"], "kind": "fact"},
        {"id": "b-2", "lang": "en", "question": "and the 2 kg one?", "answerable": True,
         "context": ["Hi, do you sell pandan chiffon?", "How much is a 1 kg pandan chiffon?"],
         "expected_docs": ["cakes.md"], "must_contain": ["S$84"], "kind": "followup"},
        {"id": "b-3", "lang": "en", "question": "Do you make wedding tiers with fresh flowers?", "answerable": False,
         "expected_docs": [], "must_contain": [], "kind": "unanswerable", "expected_behaviour": "escalate"},
        {"id": "b-4", "lang": "singlish", "question": "ok noted, thanks 👌", "answerable": False, "expected_docs": [],
         "must_contain": [], "kind": "chitchat", "expected_behaviour": "smalltalk"},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
    result = subprocess.run([sys.executable, "-m", "supportlah.cli", "--data-dir", str(tmp_path / "d"), "eval",
                             "answers", str(folder), "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["file"] == "bakery-set" and report["n_questions"] == 4
    outcomes = {q["id"]: q for q in report["questions"]}
    assert outcomes["b-2"]["correct"], outcomes["b-2"]  # asked after both earlier turns, as the same customer
    assert outcomes["b-3"]["handled"] and outcomes["b-4"]["handled"]
    assert set(report["by_kind"]) == {"fact", "followup", "unanswerable", "chitchat"}
    assert report["by_kind"]["chitchat"]["handled"] == 1.0 and report["by_kind"]["chitchat"]["answered_correctly"] is None
