"""Explicit requests for a person and sensitive topics, in all four languages."""
import pytest

from agent.intents import IntentDetector, SmallTalk
from config.types import HandoffReason


@pytest.fixture(scope="module")
def intents() -> IntentDetector:
    return IntentDetector()


@pytest.mark.parametrize(
    "text",
    [
        "talk to a person",
        "Can I speak to someone please",
        "human",
        "Agent?",
        "I want a real person",
        "connect me to customer service",
        "人工",
        "我要真人",
        "转人工客服",
        "nak cakap dengan orang",
        "Saya nak bercakap dengan ejen",
        "boleh saya cakap dengan manusia sebenar?",
        "மனிதருடன் பேச வேண்டும்",
        "ஒருவரிடம் பேச வேண்டும்",
    ],
)
def test_explicit_human_request(intents: IntentDetector, text: str) -> None:
    assert intents.wants_human(text)
    assert intents.classify(text) is HandoffReason.CUSTOMER_REQUEST


@pytest.mark.parametrize(
    "text",
    [
        "How much is chemical wash?",
        "I need someone to fix my aircon",
        "what cleaning agent do you use?",
        "Do you service LG units?",
        "berapa harga servis?",
        "化学清洗多少钱？",
        "எவ்வளவு?",
        "what is your refund policy?",
    ],
)
def test_ordinary_questions_carry_no_reason(intents: IntentDetector, text: str) -> None:
    assert intents.classify(text) is None


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("I want to make a complaint", "complaint"),
        ("Your technician damaged my ceiling, I'll call the police", "police"),
        ("my lawyer will contact you", "lawyer"),
        ("the aircon caught fire after the service", "fire"),
        ("I was injured by the falling panel", "injured"),
        ("我要投诉你们的技术员", "投诉"),
        ("退款怎么还没到", "退款"),
        ("saya nak buat aduan", "aduan"),
        ("புகார் கொடுக்க வேண்டும்", "புகார"),
    ],
)
def test_sensitive_topics(intents: IntentDetector, text: str, term: str) -> None:
    assert intents.sensitive_topic(text) == term
    assert intents.classify(text) is HandoffReason.SENSITIVE_TOPIC


def test_human_request_wins_over_sensitive_topic(intents: IntentDetector) -> None:
    assert intents.classify("I want to complain, let me talk to a manager") is HandoffReason.CUSTOMER_REQUEST


def test_lists_are_configurable() -> None:
    custom = IntentDetector(human_request_patterns=[r"\boperator\b"], human_request_substrings=[], sensitive_terms=["warranty claim", "保修"])
    assert custom.wants_human("operator please")
    assert not custom.wants_human("talk to a person")
    assert custom.sensitive_topic("I have a warranty claims question") == "warranty claims"
    assert custom.sensitive_topic("保修多久？") == "保修"
    assert custom.sensitive_topic("I want to complain") is None
    assert HandoffReason.SENSITIVE_TOPIC == "sensitive_topic"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ok", SmallTalk.THANKS),
        ("Thanks!!", SmallTalk.THANKS),
        ("谢谢 🙏", SmallTalk.THANKS),
        ("terima kasih", SmallTalk.THANKS),
        ("நன்றி", SmallTalk.THANKS),
        ("👍", SmallTalk.THANKS),
        ("Hi", SmallTalk.GREETING),
        ("你好！", SmallTalk.GREETING),
        ("வணக்கம்", SmallTalk.GREETING),
        ("hi, how much is a chemical wash?", None),
        ("ok how much", None),
        ("?", None),
    ],
)
def test_small_talk_only_when_it_is_the_whole_message(intents: IntentDetector, text: str, expected) -> None:
    assert intents.small_talk(text) is expected
