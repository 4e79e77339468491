"""Extractive answering on hand-built retrieval results: quotes, never invents."""
import re

import pytest

from agent.extractive import ExtractiveDrafter
from agent.segment import UnitKind, segment, split_sentences
from rag.types import RetrievedChunk

PRICES = """Aircon Services > Chemical Wash

A chemical wash dismantles the fan coil and washes the cooling coil with a non-corrosive solution. Recommended once a year. About 1–1.5 hours per unit.

Code: CW-HDB; Property type: HDB flat; Price per unit: $80

Code: CW-CONDO; Property type: Condominium; Price per unit: $90

Code: CW-LANDED; Property type: Landed property; Price per unit: $100"""

GENERAL = """## General Service

A general service keeps your aircon cool. We recommend one every 3 months.

| Code | Property type | Price per unit |
|------|---------------|----------------|
| GS-HDB | HDB flat | $25 |
| GS-CONDO | Condominium | $30 |

- General service (HDB): $30 per unit for 1 unit, $25 per unit from 2 units.
- Gas top-up: from $60.50 per unit."""

HOURS = """OPENING HOURS

Office, hotline and WhatsApp: Monday to Saturday, 9am to 6pm.
Closed on Sundays and public holidays.
Service slots: morning 9am-1pm, afternoon 1pm-6pm. The last job of the day
starts no later than 4:30pm.

West zone: Jurong East, Jurong West, Clementi, Bukit Batok, Bukit Panjang,
Choa Chu Kang, Boon Lay. Transport fee: $10 per visit."""

FAQ_ZH = """常见问题 > 取消或改期要收费吗？

提前 24 小时以上通知，取消或改期都不收费。不足 24 小时通知，收取 $20 的取消或改期费。"""


def chunk(chunk_id: str, document: str, text: str, rank: int, language: str = "en") -> RetrievedChunk:
    heading = text.split("\n", 1)[0] if " > " in text.split("\n", 1)[0] else ""
    return RetrievedChunk(
        chunk_id=chunk_id,
        document=document,
        text=text,
        heading=heading,
        score=1.0 / (60 + rank),
        language=language,
        dense_score=0.86 - 0.01 * rank,
        dense_rank=rank,
    )


@pytest.fixture
def chunks() -> list[RetrievedChunk]:
    return [
        chunk("prices#2", "services-and-prices.md", PRICES, 1),
        chunk("prices#1", "services-and-prices.md", GENERAL, 2),
        chunk("hours#0", "service-areas-and-hours.txt", HOURS, 3),
        chunk("faq-zh#4", "faq-zh.md", FAQ_ZH, 4, language="zh"),
    ]


@pytest.fixture
def answerer() -> ExtractiveDrafter:
    return ExtractiveDrafter()


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:[.,:]\d+)*", text)


async def test_quotes_the_matching_table_row_with_citation(answerer, chunks) -> None:
    answer = await answerer.answer("How much is a chemical wash for an HDB flat?", chunks)
    assert answer.text == "Chemical Wash — Code: CW-HDB; Property type: HDB flat; Price per unit: $80"
    assert [(s.document, s.chunk_id) for s in answer.sources] == [("services-and-prices.md", "prices#2")]
    assert answer.language == "en"
    assert answer.coverage > 0.8


async def test_unspecified_property_type_returns_all_parallel_rows(answerer, chunks) -> None:
    answer = await answerer.answer("chemical wash price", chunks)
    assert answer.text.splitlines() == [
        "Chemical Wash — Code: CW-HDB; Property type: HDB flat; Price per unit: $80",
        "Chemical Wash — Code: CW-CONDO; Property type: Condominium; Price per unit: $90",
        "Chemical Wash — Code: CW-LANDED; Property type: Landed property; Price per unit: $100",
    ]


async def test_markdown_table_rows_are_read_with_their_header(answerer, chunks) -> None:
    answer = await answerer.answer("GS-CONDO", chunks)
    assert answer.text == "General Service — Code: GS-CONDO, Property type: Condominium, Price per unit: $30"
    assert answer.sources[0].chunk_id == "prices#1"


async def test_bullet_line_is_kept_whole_and_numbers_verbatim(answerer, chunks) -> None:
    answer = await answerer.answer("How much is a gas top-up?", chunks)
    assert answer.text == "Gas top-up: from $60.50 per unit."
    for question in ("general service HDB price for 1 unit", "transport fee Jurong West", "last job time"):
        answer = await answerer.answer(question, chunks)
        cited = answer.sources[0].chunk_id
        source_text = next(c.text for c in chunks if c.chunk_id == cited)
        assert answer.text and numbers(answer.text)
        assert all(n in source_text for n in numbers(answer.text)), answer.text


async def test_wrapped_short_lines_keep_their_context(answerer, chunks) -> None:
    answer = await answerer.answer("Is there a transport fee for Jurong West?", chunks)
    assert "Jurong West" in answer.text and "Transport fee: $10 per visit." in answer.text
    hours = await answerer.answer("What are your opening hours?", chunks)
    assert hours.text.startswith("Office, hotline and WhatsApp: Monday to Saturday, 9am to 6pm.")


async def test_chinese_question_answered_from_chinese_chunk(answerer, chunks) -> None:
    answer = await answerer.answer("取消预约要收费吗？", chunks)
    assert answer.sources[0].chunk_id == "faq-zh#4"
    assert "取消或改期都不收费" in answer.text
    assert answer.language == "zh"


async def test_nothing_relevant_gives_zero_coverage(answerer, chunks) -> None:
    answer = await answerer.answer("What is the capital of Peru?", chunks)
    assert answer.coverage == 0.0


async def test_no_chunks_no_answer(answerer) -> None:
    answer = await answerer.answer("How much is a chemical wash?", [])
    assert answer.text == "" and answer.sources == [] and answer.coverage == 0.0


def test_sentence_splitting_respects_abbreviations_decimals_and_cjk() -> None:
    assert split_sentences("ChillPro Pte. Ltd. is in Eunos. Fees from $1.50 apply. See e.g. our FAQ.") == [
        "ChillPro Pte. Ltd. is in Eunos.",
        "Fees from $1.50 apply.",
        "See e.g. our FAQ.",
    ]
    assert split_sentences("星期日休息。下班后收到的信息会在下一个工作日回复！好吗？") == [
        "星期日休息。",
        "下班后收到的信息会在下一个工作日回复！",
        "好吗？",
    ]
    assert split_sentences("Refunds apply. - 30-day warranty: GS jobs. - 90-day warranty: CW jobs.") == [
        "Refunds apply.",
        "30-day warranty: GS jobs.",
        "90-day warranty: CW jobs.",
    ]


def test_segment_marks_headings_rows_and_items() -> None:
    units = segment(GENERAL)
    kinds = {u.text: u.kind for u in units}
    assert kinds["GS-HDB | HDB flat | $25"] is UnitKind.ROW
    assert kinds["General service (HDB): $30 per unit for 1 unit, $25 per unit from 2 units."] is UnitKind.ITEM
    assert all(u.heading == "General Service" for u in units)
    assert not any("Code | Property type" == u.text for u in units)  # a header is context, not an answer
    faq = segment(FAQ_ZH, heading="常见问题 > 取消或改期要收费吗？")
    assert [u.heading for u in faq] == ["取消或改期要收费吗？"] * len(faq)
