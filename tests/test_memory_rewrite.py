"""The offline follow-up rewriter and the slot lexicon it stands on (pure string work)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.types import Turn
from memory.rewrite import HeuristicRewriter, previous_question
from tests.sample_business import sample_lexicon, sample_rewriter

EVALSET = Path(__file__).resolve().parent.parent / "evalsets" / "sample_kb_answers.jsonl"
HDB_GS = "How much is a general service for an HDB flat?"


@pytest.fixture(scope="module")
def rewriter() -> HeuristicRewriter:
    return sample_rewriter()


@pytest.mark.parametrize(("previous", "follow_up", "standalone"), [
    (HDB_GS, "and for a condo?", "How much is a general service for a condo?"),
    (HDB_GS, "how about for condo?", "How much is a general service for condo?"),
    (HDB_GS, "how about landed?", "How much is a general service for landed?"),
    (HDB_GS, "condo?", "How much is a general service for condo?"),
    (HDB_GS, "and chemical wash?", "How much is chemical wash for an HDB flat?"),
    ("How much is a chemical wash for an HDB flat?", "What about a landed house?",
     "How much is a chemical wash for a landed house?"),
    ("Do you charge a transport fee for Jurong West?", "And to Sentosa?",
     "Do you charge a transport fee for Sentosa?"),
    ("What is the warranty on a chemical overhaul?", "and for a gas top-up?",
     "What is the warranty on a gas top-up?"),
    ("组屋普通清洗多少钱？", "那公寓呢？", "公寓普通清洗多少钱？"),
    ("组屋普通清洗多少钱？", "那共管公寓呢？", "共管公寓普通清洗多少钱？"),
    ("Berapa harga servis am untuk flat HDB?", "Kalau kondo pula?", "Berapa harga servis am untuk kondo?"),
    ("HDB வீட்டுக்கு பொது சர்வீஸ் எவ்வளவு?", "காண்டோவுக்கு எவ்வளவு?", "காண்டோ வீட்டுக்கு பொது சர்வீஸ் எவ்வளவு?"),
    # a new question about the same subject keeps its words and gains the subject
    (HDB_GS, "and how long does it take?", "and how long does it take (general service, HDB flat)?"),
    (HDB_GS, "What about the warranty?", "What about the warranty (general service, HDB flat)?"),
    (HDB_GS, "How much does it cost?", "How much does it cost (general service, HDB flat)?"),
    # an entity of a type the previous question lacked is added
    (HDB_GS, "And to Sentosa?", "How much is a general service for an HDB flat (Sentosa)?"),
])
def test_follow_ups_become_standalone_questions(rewriter, previous, follow_up, standalone):
    assert rewriter.rewrite_now(follow_up, previous) == standalone


@pytest.mark.parametrize(("previous", "message"), [
    (HDB_GS, "How much is a chemical wash for a condo?"),  # complete by itself
    (HDB_GS, "Is it open on Sunday?"),  # a dummy "it": a new question
    (HDB_GS, "Do you serve Sentosa?"),
    (HDB_GS, "What payment methods do you accept?"),
    (HDB_GS, "ok thanks"),
    (HDB_GS, "and?"),
    ("Are you open on Sundays?", "How much is a gas top-up for R410A?"),  # nothing to inherit
    (HDB_GS, "My aircon is leaking water onto the floor and making a loud noise since this morning, "
             "what should I do about it?"),  # long: never a bare follow-up
    (None, "and for a condo?"),  # nothing to follow
])
def test_standalone_messages_are_left_alone(rewriter, previous, message):
    assert rewriter.rewrite_now(message, previous) == message


async def test_the_previous_user_turn_is_the_one_followed(rewriter):
    history = [Turn("user", HDB_GS), Turn("assistant", "General service for an HDB flat: $25 per unit."),
               Turn("staff", "Anything else?")]
    assert previous_question(history) == HDB_GS
    assert await rewriter.rewrite("and for a condo?", history, "en") == "How much is a general service for a condo?"
    # chained: the next follow-up builds on the rewritten one
    chained = history + [Turn("user", "How much is a general service for a condo?")]
    assert await rewriter.rewrite("what about landed?", chained, "en") == "How much is a general service for landed?"


def test_profile_facts_fill_an_open_slot_only(rewriter):
    facts = {"property": "condo", "area": "Bishan"}
    assert rewriter.personalise("How much is a chemical wash?", facts) == "How much is a chemical wash (condo)?"
    assert rewriter.personalise("How much is a chemical wash for HDB?", facts) == "How much is a chemical wash for HDB?"
    assert rewriter.personalise("What are your opening hours?", facts) == "What are your opening hours?"
    assert rewriter.personalise("How much is a chemical wash?", {}) == "How much is a chemical wash?"


def test_every_follow_up_of_the_eval_set_is_rewritten_and_no_standalone_question_is():
    """Measured on evalsets/sample_kb_answers.jsonl: each labelled follow-up gains its context's subject;
    each answerable standalone question asked right after another one stays exactly as asked."""
    rewriter = sample_rewriter()
    lexicon = sample_lexicon()
    cases = [json.loads(line) for line in EVALSET.read_text(encoding="utf-8").splitlines() if line.strip()]
    follow_ups = [c for c in cases if c["kind"] == "followup"]
    assert len(follow_ups) >= 7
    for case in follow_ups:
        rewritten = rewriter.rewrite_now(case["question"], case["context"])
        assert rewritten != case["question"], case["id"]
        kept = {s.type for s in lexicon.find(case["context"])} - {s.type for s in lexicon.find(case["question"])}
        assert kept <= {s.type for s in lexicon.find(rewritten)}, case["id"]  # the inherited subject is there
    standalone = [c for c in cases if c["kind"] != "followup" and c["answerable"]]
    changed = [c["id"] for prev, c in zip(standalone, standalone[1:])
               if rewriter.rewrite_now(c["question"], prev["question"]) != " ".join(c["question"].split())]
    assert changed == []


def test_lexicon_prefers_the_longest_form_and_never_overlaps():
    lexicon = sample_lexicon()
    slots = lexicon.find("Jurong West or Jurong Island, for an executive condo?")
    assert [(s.type, s.value, s.surface) for s in slots] == [
        ("area", "jurong west", "Jurong West"), ("area", "jurong island", "Jurong Island"),
        ("property", "condo", "executive condo")]
    assert [s.value for s in lexicon.find("CONDO or hdb")] == ["condo", "hdb"]
    assert lexicon.find("secondo") == []  # whole words only in spaced scripts
    tamil = lexicon.find("காண்டோவுக்கு எவ்வளவு?")  # Tamil case endings follow the entity
    assert [(s.value, s.surface) for s in tamil] == [("condo", "காண்டோ")]
    assert lexicon.values("我住在公寓", "property") == ["condo"]
