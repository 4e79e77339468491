"""Command replies in the customer's language, and the language helpers they rely on."""
from __future__ import annotations

import pytest

from channels.telegram import texts
from channels.telegram.commands import command_reply
from channels.telegram.keyboard import Button, decode_keyboard, feedback_keyboard

BUSINESS = "ChillPro Aircon & Home Services"


def reply(command: str, language: str | None, args: str = ""):
    return command_reply(command, language=language, business_name=BUSINESS, args=args)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["ChillPro Aircon & Home Services", "store your messages", "/delete_my_data"]),
        ("zh", ["ChillPro Aircon & Home Services", "保存您的消息", "/delete_my_data"]),
        ("ms", ["ChillPro Aircon & Home Services", "menyimpan mesej anda", "/delete_my_data"]),
        ("ta", ["ChillPro Aircon & Home Services", "செய்திகளைச் சேமிக்கிறோம்", "/delete_my_data"]),
    ],
)
def test_start_greets_with_a_pdpa_notice(language, expected):
    start = reply("start", language)
    assert start.language == language
    for fragment in expected:
        assert fragment in start.text
    assert start.keyboard == ()


@pytest.mark.parametrize(("language", "fragment"), [("en", "/human – talk to a person"), ("zh", "/human – 联系真人客服")])
def test_help_lists_the_commands(language, fragment):
    help_text = reply("help", language).text
    assert fragment in help_text
    for command in ("/human", "/language", "/reset", "/my_data", "/delete_my_data"):
        assert command in help_text


@pytest.mark.parametrize(("language", "fragment"),
                         [("en", "A staff member will reply here"), ("ms", "Seorang kakitangan")])
def test_human(language, fragment):
    assert fragment in reply("human", language).text


@pytest.mark.parametrize(("language", "fragment"), [("en", "fresh conversation"), ("ta", "புதிய உரையாடல்")])
def test_reset(language, fragment):
    assert fragment in reply("reset", language).text


@pytest.mark.parametrize(("language", "fragments"), [("en", ["recorded", "30 days"]), ("zh", ["已记录", "30天"])])
def test_delete_my_data_records_the_request_without_claiming_deletion(language, fragments):
    text = reply("delete_my_data", language).text
    for fragment in fragments:
        assert fragment in text
    assert "has been deleted" not in text and "已删除" not in text


@pytest.mark.parametrize(("language", "fragment"), [("en", "within 30 days"), ("ms", "dalam masa 30 hari")])
def test_my_data(language, fragment):
    assert fragment in reply("my_data", language).text


@pytest.mark.parametrize(("language", "current"), [("en", "Your language is English"), ("zh", "您目前的语言是中文")])
def test_language_without_argument_shows_current_and_options(language, current):
    shown = reply("language", language)
    assert current in shown.text
    assert shown.new_language is None
    assert [b.data for row in shown.keyboard for b in row] == ["lang:en", "lang:zh", "lang:ms", "lang:ta"]
    assert [b.label for row in shown.keyboard for b in row] == ["English", "中文", "Bahasa Melayu", "தமிழ்"]


@pytest.mark.parametrize(("current", "requested", "chosen", "fragment"),
                         [("en", "ta", "ta", "தமிழ் மொழியில்"), ("zh", "Malay", "ms", "dalam Bahasa Melayu"),
                          ("ms", "zh-Hans", "zh", "之后我会用中文")])
def test_language_with_argument_switches_and_answers_in_the_new_language(current, requested, chosen, fragment):
    switched = reply("language", current, requested)
    assert switched.new_language == chosen
    assert switched.language == chosen
    assert fragment in switched.text
    assert switched.keyboard == ()


def test_unknown_language_argument_offers_the_choices_in_the_current_language():
    refused = reply("language", "zh", "klingon")
    assert refused.new_language is None
    assert refused.text.startswith("暂不支持该语言")
    assert len([b for row in refused.keyboard for b in row]) == 4


def test_unknown_command_raises():
    with pytest.raises(ValueError, match="unknown command"):
        reply("sudo", "en")


def test_unknown_conversation_language_falls_back_to_english():
    assert reply("human", None).language == "en"
    assert reply("human", "fr").text == reply("human", "en").text
    assert reply("human", "zh-TW").language == "zh"


def test_every_text_exists_in_every_language():
    for key, variants in texts._CATALOG.items():
        assert set(variants) == set(texts.LANGUAGE_CODES), key
    for language in texts.LANGUAGE_CODES:
        descriptions = texts.command_descriptions(language)
        assert [c for c, _ in descriptions] == list(texts.COMMANDS)
        assert all(1 <= len(d) <= 256 for _, d in descriptions)


def test_command_replies_suppress_the_default_feedback_keyboard():
    metadata = reply("reset", "en").metadata()
    assert metadata == {"language": "en", "keyboard": "[]"}
    assert decode_keyboard(metadata["keyboard"]) == ()


def test_callback_data_is_bounded():
    with pytest.raises(ValueError, match="1-64 bytes"):
        Button("x", "y" * 65)
    long_id = "z" * 60
    assert [[b.data for b in row] for row in feedback_keyboard(long_id, "en")] == [["human"]]
