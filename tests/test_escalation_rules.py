"""The hand-off's pure rules: business hours, customer wording, the unsatisfied rule, priority, the card."""
from __future__ import annotations

import re
import string
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from config.languages import LANGUAGE_CODES
from escalation import card
from escalation import texts as customer_texts
from config.hours import BusinessHours, BusinessHoursError
from escalation.models import Priority, Ticket, TicketStatus
from escalation.triggers import CustomerEvent, find_term, priority_for, repeats, unsatisfied

SGT = ZoneInfo("Asia/Singapore")
HOURS = BusinessHours.parse("mon-fri 09:00-18:00, sat 09:00-13:00", holidays=[date(2026, 12, 25)])


def sgt(*args: int) -> datetime:
    return datetime(*args, tzinfo=SGT)


# ---------------------------------------------------------------------- business hours
@pytest.mark.parametrize(("moment", "open_"), [
    (sgt(2026, 11, 26, 9, 0), True),  # Thursday, opening minute
    (sgt(2026, 11, 26, 17, 59), True),
    (sgt(2026, 11, 26, 18, 0), False),  # closing minute is closed
    (sgt(2026, 11, 28, 12, 30), True),  # Saturday morning
    (sgt(2026, 11, 28, 13, 30), False),
    (sgt(2026, 11, 29, 11, 0), False),  # Sunday
    (sgt(2026, 12, 25, 11, 0), False),  # public holiday (a Friday)
])
def test_open_hours(moment, open_):
    assert HOURS.is_open(moment) is open_


def test_next_open_skips_nights_weekends_and_holidays():
    assert HOURS.next_open(sgt(2026, 11, 26, 10, 0)) == sgt(2026, 11, 26, 10, 0)
    assert HOURS.next_open(sgt(2026, 11, 26, 20, 0)) == sgt(2026, 11, 27, 9, 0)
    assert HOURS.next_open(sgt(2026, 11, 28, 15, 0)) == sgt(2026, 11, 30, 9, 0)  # Saturday after 1pm -> Monday
    assert HOURS.next_open(sgt(2026, 12, 24, 19, 0)) == sgt(2026, 12, 26, 9, 0)  # Christmas Eve -> Saturday


def test_sla_counts_staffed_minutes_only():
    assert HOURS.add_business_minutes(sgt(2026, 11, 26, 10, 0), 30) == sgt(2026, 11, 26, 10, 30)
    assert HOURS.add_business_minutes(sgt(2026, 11, 26, 17, 40), 60) == sgt(2026, 11, 27, 9, 40)
    assert HOURS.add_business_minutes(sgt(2026, 11, 28, 22, 0), 15) == sgt(2026, 11, 30, 9, 15)
    never = BusinessHours.parse("", time_zone="Asia/Singapore")
    assert never.next_open(sgt(2026, 11, 26, 10, 0)) is None and not never.is_open(sgt(2026, 11, 26, 10, 0))


def test_spans_and_day_ranges_parse():
    hours = BusinessHours.parse("daily 00:00-24:00")
    assert hours.is_open(sgt(2026, 11, 29, 23, 59))
    split = BusinessHours.parse("sat-sun 10:00-12:00 14:00-16:00, fri-mon 20:00-21:00")
    assert split.weekly[6] == ((600, 720), (840, 960), (1200, 1260)) and split.weekly[1] == ()


@pytest.mark.parametrize(("spec", "complaint"), [
    ("funday 09:00-18:00", "unknown day"),
    ("mon-fri", "give the hours"),
    ("mon 9-18", "not a span"),
    ("mon 18:00-09:00", "start before it ends"),
    ("mon 09:00-25:00", "start before it ends"),
])
def test_bad_hours_are_explained(spec, complaint):
    with pytest.raises(BusinessHoursError, match=complaint):
        BusinessHours.parse(spec)


def test_unknown_time_zone_is_explained():
    with pytest.raises(BusinessHoursError, match="unknown time zone"):
        BusinessHours.parse("daily 09:00-18:00", time_zone="Mars/Olympus")


# ---------------------------------------------------------------------- customer wording
def test_every_text_has_all_languages_and_the_same_placeholders():
    for key, by_language in customer_texts._TEXTS.items():
        assert set(by_language) == set(LANGUAGE_CODES), key
        fields = {frozenset(f for _, f, _, _ in string.Formatter().parse(t) if f) for t in by_language.values()}
        assert len(fields) == 1, key


@pytest.mark.parametrize(("language", "tomorrow", "later"), [
    ("en", "tomorrow at 9:00 am", "on Monday, 30 Nov at 2:30 pm"),
    ("zh", "明天上午9:00", "11月30日（星期一）下午2:30"),
    ("ms", "esok pukul 9:00 pagi", "pada hari Isnin, 30 Nov pukul 2:30 petang"),
    ("ta", "நாளை காலை 9:00 மணிக்கு", "திங்கள், 30 நவ. மதியம் 2:30 மணிக்கு"),
])
def test_expected_reply_time_is_worded_per_language(language, tomorrow, later):
    now = sgt(2026, 11, 26, 20, 0)
    assert customer_texts.format_when(sgt(2026, 11, 27, 9, 0), now, language) == tomorrow
    assert customer_texts.format_when(sgt(2026, 11, 30, 14, 30), now, language) == later
    notice = customer_texts.expected_reply(sgt(2026, 11, 27, 9, 0), now, language)
    assert tomorrow in notice


def test_unknown_language_falls_back_to_english():
    assert customer_texts.text("resolved", "fr-CA") == customer_texts.text("resolved", "en")
    assert customer_texts.expected_reply(None, sgt(2026, 11, 26, 20, 0), "ms").count("secepat mungkin") == 1


# ---------------------------------------------------------------------- unsatisfied
def q(text: str) -> CustomerEvent:
    return CustomerEvent("question", text=text)


def down(rated: str) -> CustomerEvent:
    return CustomerEvent("down", rated_message_id=rated)


def up(rated: str) -> CustomerEvent:
    return CustomerEvent("up", rated_message_id=rated)


HOURS_Q, FEE_Q = "What are your opening hours?", "How much is the transport fee to Jurong?"


@pytest.mark.parametrize(("events", "expected"), [
    ([q(HOURS_Q), down("a"), q(FEE_Q), down("b")], True),  # two 👎 in a row
    ([q(HOURS_Q), down("a"), q("what are your opening hours")], True),  # 👎 then asking again
    ([q(HOURS_Q), q("What are ur opening hours??"), q("what are your opening hours?")], True),  # third time
    ([q(HOURS_Q), q(HOURS_Q)], False),  # one repeat is one signal
    ([q(HOURS_Q), down("a"), down("a")], False),  # the same answer rated twice counts once
    ([q(HOURS_Q), down("a"), up("a"), q(FEE_Q), down("b")], False),  # 👍 ends the run
    ([q(HOURS_Q), q(HOURS_Q), q(FEE_Q), down("c")], False),  # moved on contentedly: run over
    ([q(HOURS_Q), down("a"), q(FEE_Q), down("b"), q("Thanks anyway")], False),  # the last event is no signal
    ([], False),
])
def test_unsatisfied_rule(events, expected):
    assert unsatisfied(events) is expected


def test_repeats_ignores_case_punctuation_and_small_typos_but_not_short_chatter():
    assert repeats("Do you service Daikin VRV?", "do you service daikin vrv")
    assert repeats("你们几点开门？", "你们几点开门")
    assert not repeats("ok", "ok")
    assert not repeats("What are your opening hours?", "How much is a chemical wash?")


# ---------------------------------------------------------------------- priority
def test_priority_rules():
    terms = ("urgent", "漏水")
    assert priority_for("It is URGENT, water everywhere", "low_confidence", urgent_terms=terms, vip=False,
                        repeat_contact=False) == (Priority.URGENT, ["urgent word “urgent”"])
    assert priority_for("空调漏水了", "low_confidence", urgent_terms=terms, vip=False, repeat_contact=False)[0] \
        == Priority.URGENT
    assert priority_for("hello", "low_confidence", urgent_terms=terms, vip=True, repeat_contact=True) \
        == (Priority.HIGH, ["VIP customer", "contacted us recently"])
    assert priority_for("refund please", "sensitive_topic", urgent_terms=terms, vip=False, repeat_contact=False) \
        == (Priority.HIGH, ["sensitive topic"])
    assert priority_for("insurgent", "low_confidence", urgent_terms=terms, vip=False, repeat_contact=False) \
        == (Priority.NORMAL, [])  # whole words only


def test_find_term_matches_phrases_across_spaces():
    assert find_term("there is a BURNING  smell", ["burning smell"]) == "burning smell"
    assert find_term("nothing here", ["burning smell", ""]) is None


# ---------------------------------------------------------------------- the card
def ticket(**values) -> Ticket:
    base = dict(id="t1", number=42, conversation_id="c1", contact_id="k1", channel="whatsapp",
                customer_id="whatsapp:+6591234567", customer_name="Mei Ling", language="zh",
                status=TicketStatus.OPEN, priority=Priority.HIGH, reason="sensitive_topic", assignee_name=None,
                summary="Asks: “退款”", draft_text="", draft_sources=[],
                card_facts={"transcript": [{"role": "user", "text": "我要退款"}], "priority_why": ["sensitive topic"],
                            "hours_note": ""})
    base.update(values)
    return Ticket(**base)


def test_card_shows_what_staff_need_and_buttons_follow_the_status():
    text = card.render(ticket(draft_text="Refunds are processed within 14 days.",
                              draft_sources=[{"document": "warranty-and-refunds.pdf"}]),
                       sla_local=sgt(2026, 11, 26, 10, 30), topics=True)
    for expected in ("Ticket #42 · WhatsApp · Mei Ling", "🟠 high (sensitive topic)", "Language: Chinese",
                     "Reason: sensitive topic", "Reply due: Thu 26 Nov 10:30", "👤 我要退款", "AI draft:",
                     "Refunds are processed within 14 days.", "Sources: warranty-and-refunds.pdf", "/note"):
        assert expected in text
    labels = lambda t: [b.label for row in card.keyboard(t) for b in row]  # noqa: E731
    assert labels(ticket(draft_text="x")) == ["✋ Claim", "📤 Send AI draft", "✅ Resolve", "🤖 Return to bot"]
    assert labels(ticket(status=TicketStatus.CLAIMED)) == ["✅ Resolve", "🤖 Return to bot"]
    assert labels(ticket(status=TicketStatus.CLOSED)) == ["↩️ Reopen"]


def test_card_stays_within_one_telegram_message():
    huge = ticket(draft_text="word " * 3000, summary="s" * 5000,
                  card_facts={"transcript": [{"role": "user", "text": "x" * 2000}] * 6})
    assert len(card.render(huge, sla_local=None, topics=False)) <= card.MAX_CARD


def test_callback_data_round_trips_and_rejects_anything_else():
    data = card.callback_data("resolve", 123456)
    assert len(data.encode()) <= 64 and card.parse_callback(data) == ("resolve", 123456)
    for other in ("human", "fb:down:abc", "esc:delete:1", "esc:claim:", "esc:claim:1x"):
        assert card.parse_callback(other) is None


def test_topic_name_is_short_and_names_the_customer():
    name = card.topic_name(ticket(customer_name="M" * 300))
    assert name.startswith("#42 · WhatsApp · MMM") and len(name) == card.MAX_TOPIC_NAME
    assert re.fullmatch(r"#42 · WhatsApp · whatsapp:\+6591234567", card.topic_name(ticket(customer_name=None)))


def test_datetimes_are_utc_aware_in_hours_results():
    result = HOURS.next_open(datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc))  # 22:00 SGT
    assert result.tzinfo is not None and result == sgt(2026, 11, 27, 9, 0)
