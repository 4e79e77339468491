"""Language detection on the short, mixed messages customers actually send."""
import pytest

from agent.language import LanguageDetector, detect_language
from config.languages import LANGUAGE_CODES


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("how much is chemical wash?", "en"),
        ("Do you service condos in Jurong?", "en"),
        ("多少钱？", "zh"),
        ("冷气漏水怎么办", "zh"),
        ("aircon 多少钱", "zh"),
        ("berapa harga servis?", "ms"),
        ("aircon tak sejuk, boleh datang hari ini?", "ms"),
        ("Boleh saya batal tempahan?", "ms"),
        ("Berapa lama chemical wash?", "ms"),
        ("terima kasih", "ms"),
        ("எவ்வளவு?", "ta"),
        ("ஏசி சர்வீஸ் விலை என்ன?", "ta"),
        ("can or not lah", "en"),
        ("aircon got leak, can come today or not?", "en"),
        ("wah so expensive one meh", "en"),
    ],
)
def test_detects_language_without_hint(detector: LanguageDetector, text: str, expected: str) -> None:
    assert detector.detect(text) == expected


@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [
        ("ok", "ms", "ms"),
        ("ok", "zh", "zh"),
        ("ok", None, "en"),
        ("thanks", "ta", "ta"),
        ("?", "zh", "zh"),
        ("1", "ms", "ms"),
        ("gas top up", "ms", "ms"),  # service names only: keep the conversation's language
        ("gas top up", None, "en"),
        ("", "ta", "ta"),
    ],
)
def test_short_messages_lean_on_hint(detector: LanguageDetector, text: str, hint: str | None, expected: str) -> None:
    assert detector.detect(text, hint) == expected


def test_clear_text_overrides_hint(detector: LanguageDetector) -> None:
    assert detector.detect("What time do you open on Sunday?", hint="ms") == "en"
    assert detector.detect("Adakah anda buka pada hari Ahad?", hint="en") == "ms"
    assert detector.detect("营业时间是几点？", hint="en") == "zh"


def test_unsupported_hint_is_ignored_and_other_languages_fall_back(detector: LanguageDetector) -> None:
    assert detector.detect("ok", hint="fr") == "en"
    assert detector.detect("Bonjour, je voudrais prendre un rendez-vous demain matin") == "en"


def test_result_is_always_supported_and_deterministic(detector: LanguageDetector) -> None:
    samples = ["hello", "berapa", "saya nak tanya", "lah", "123 456", "!!!", "Ich möchte einen Termin"]
    first = [detector.detect(s) for s in samples]
    again = [LanguageDetector().detect(s) for s in samples]
    assert first == again
    assert set(first) <= set(LANGUAGE_CODES)


def test_supported_set_is_configurable() -> None:
    english_only = LanguageDetector(supported=("en",), fallback="en")
    assert english_only.detect("多少钱？") == "en"
    assert english_only.detect("berapa harga servis?") == "en"
    with pytest.raises(ValueError):
        LanguageDetector(supported=("zh",), fallback="en")


def test_module_function_matches_detector(detector: LanguageDetector) -> None:
    assert detect_language("berapa harga servis?") == detector.detect("berapa harga servis?") == "ms"
    assert detect_language("ok", "zh") == "zh"
