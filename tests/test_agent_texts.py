"""Every canned text exists in every language, with the same placeholders."""
import string

import pytest

from agent.texts import TEXTS, text
from config.languages import LANGUAGE_CODES


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


REQUIRED_KEYS = {
    "handoff", "handoff_requested", "team_notified", "greeting", "error", "voice_note", "out_of_hours",
    "human_takeover", "sources_label", "empty_prompt", "documents_say", "welcome",
    "voice_note_too_long", "voice_note_unclear", "you_asked",
}


def test_required_keys_present() -> None:
    assert REQUIRED_KEYS <= set(TEXTS)


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_key_in_every_language_with_matching_placeholders(key: str) -> None:
    by_lang = TEXTS[key]
    assert set(LANGUAGE_CODES) <= set(by_lang), f"{key} lacks {set(LANGUAGE_CODES) - set(by_lang)}"
    english = _placeholders(by_lang["en"])
    for lang in LANGUAGE_CODES:
        assert by_lang[lang].strip(), f"{key}/{lang} is empty"
        assert _placeholders(by_lang[lang]) == english, f"{key}/{lang} placeholders differ from English"


def test_texts_are_really_translated() -> None:
    for key, by_lang in TEXTS.items():
        if key == "sources_label":
            continue
        assert len({by_lang[lang] for lang in LANGUAGE_CODES}) == len(LANGUAGE_CODES), key
    assert any("\u4e00" <= ch <= "\u9fff" for ch in TEXTS["handoff"]["zh"])
    assert any("\u0b80" <= ch <= "\u0bff" for ch in TEXTS["handoff"]["ta"])


def test_text_formats_and_falls_back_to_english() -> None:
    assert text("out_of_hours", "ms", when="esok 9 pagi").count("esok 9 pagi") == 1
    assert "{when}" not in text("out_of_hours", "zh", when="明天上午9点")
    assert text("greeting", "en", business="ChillPro").startswith("Hi! I'm the virtual assistant for ChillPro.")
    assert text("handoff", "fr") == TEXTS["handoff"]["en"]
    assert text("sources_label", "ta") == "ஆதாரங்கள்:"


def test_missing_placeholder_or_unknown_key_fails_loudly() -> None:
    with pytest.raises(KeyError):
        text("out_of_hours", "en")
    with pytest.raises(KeyError):
        text("no_such_key", "en")
