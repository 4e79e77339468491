"""Splitting long replies into WhatsApp parts: limits, order, and natural boundaries."""
from __future__ import annotations

import re

import pytest

from channels.twilio.outbound import split_for_whatsapp
from channels.twilio.splitting import WHATSAPP_MAX_CHARS, text_length


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_short_text_is_one_part_trimmed():
    assert split_for_whatsapp("  Hello there!  ") == ["Hello there!"]
    assert split_for_whatsapp("   ") == []


def test_exactly_at_the_limit_stays_whole():
    text = "a" * WHATSAPP_MAX_CHARS
    assert split_for_whatsapp(text) == [text]


def test_latin_text_splits_at_sentence_ends_in_order():
    sentences = [f"Sentence number {i} explains the servicing package." for i in range(80)]
    text = " ".join(sentences)

    parts = split_for_whatsapp(text)

    assert len(parts) == 3
    assert all(text_length(p) <= WHATSAPP_MAX_CHARS for p in parts)
    assert all(p.endswith("package.") for p in parts)
    assert " ".join(parts) == text


def test_cjk_text_splits_after_full_stops_without_spaces():
    text = "".join(f"第{i}句：我们提供空调清洗服务！价格合理吗？是的。" for i in range(120))

    parts = split_for_whatsapp(text)

    assert len(parts) > 1
    assert all(text_length(p) <= WHATSAPP_MAX_CHARS for p in parts)
    assert all(p[-1] in "。！？" for p in parts)
    assert "".join(parts) == text


def test_paragraph_breaks_are_kept_inside_a_part():
    text = "Opening hours.\n\nWe are open daily. " + "More detail here. " * 100

    parts = split_for_whatsapp(text)

    assert parts[0].startswith("Opening hours.\n\nWe are open daily.")
    assert squash("".join(parts)) == squash(text)


def test_run_without_boundaries_is_hard_cut():
    text = "x" * 3500

    parts = split_for_whatsapp(text)

    assert [len(p) for p in parts] == [1600, 1600, 300]
    assert "".join(parts) == text


def test_long_sentence_falls_back_to_word_boundaries():
    text = " ".join(["aircon"] * 600)  # one 4,199-char "sentence"

    parts = split_for_whatsapp(text)

    assert all(text_length(p) <= WHATSAPP_MAX_CHARS for p in parts)
    assert all(set(p.split()) == {"aircon"} for p in parts)
    assert " ".join(parts) == text


def test_emoji_count_as_two_units_and_are_never_cut_in_half():
    text = "😀" * 1000

    parts = split_for_whatsapp(text)

    assert [text_length(p) for p in parts] == [1600, 400]
    assert "".join(parts) == text


@pytest.mark.parametrize("limit", [50, 200, 1600])
def test_every_part_respects_any_limit(limit):
    text = ("Is the warranty 12 months? Yes! It covers parts. 保修一年。 " * 60).strip()

    parts = split_for_whatsapp(text, limit=limit)

    assert all(0 < text_length(p) <= limit for p in parts)
    assert squash("".join(parts)) == squash(text)
