"""The last check on a model's answer before a customer sees it.

The prompt asks the model to stay inside the documents; this guard does not trust
that it did. It compares the answer with the evidence it cites and fails it for:

* ``leak``: our instructions (a canary string, or any run of eight of their words);
* ``injection``: phrases of an obeyed injection ("ignore previous instructions" …);
* ``placeholder``: a masking placeholder we never issued;
* ``link``: a URL, e-mail address or domain not in the cited text;
* ``number``: a price, percentage, time or other number not in the cited text
  (plain numbers may also come from the customer's own words, never prices);
* ``promise``: a discount, "free", a guarantee or a refund the cited text never mentions.

Numbers are compared by value ("$1,200.00" matches "1200"), times by clock time
("6pm" matches "18:00").
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from agent.safety import PLACEHOLDER, InjectionDetector

SHINGLE_WORDS = 8

_WORD = re.compile(r"\w+", re.UNICODE)
_TIME = re.compile(
    r"(?<![\d:.])(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])|(?<![\d:.])(\d{1,2}):(\d{2})(?![\d:])",
    re.IGNORECASE,
)
_CURRENCY = r"(?:S\$|SGD|US\$|USD|RM|MYR|\$|€|£|¥|₹)"
_MONEY = re.compile(
    rf"{_CURRENCY}\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(?:dollars?|SGD|新元|新币|元|块|ringgit|cents?|sen)",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|％|percent|per cent|peratus)|百分之(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s?折",
                      re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ENUMERATION = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
_URL = re.compile(r"https?://[^\s<>()\[\]\"']+|www\.[^\s<>()\[\]\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DOMAIN = re.compile(r"(?<![@\w.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|sg|net|org|my|io|co|biz|info|shop|app)\b",
                     re.IGNORECASE)

PROMISE_TERMS: dict[str, tuple[str, ...]] = {
    "discount": ("discount", "% off", "percent off", "promo", "promotion", "promo code", "voucher", "coupon",
                 "rebate", "cashback", "折扣", "优惠", "打折", "促销", "代金券", "diskaun", "potongan harga",
                 "promosi", "baucar", "rebat", "தள்ளுபடி", "சலுகை"),
    "free": ("free of charge", "for free", "free", "complimentary", "waive", "waived", "免费", "免收",
             "percuma", "tanpa caj", "இலவச"),
    "guarantee": ("guarantee", "guaranteed", "warranty", "warranties", "保证", "保修", "保固", "jaminan",
                  "waranti", "உத்தரவாத"),
    "refund": ("refund", "refunds", "refunded", "money back", "退款", "退钱", "bayaran balik", "pulangan wang",
               "பணத்தைத் திரும்ப"),
}
_NOT_A_PROMISE = re.compile(r"\bfeel free\b|\btoll[- ]free\b|\b\w+-free\b|\bfree to\b", re.IGNORECASE)
_CJK_OR_TAMIL = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")


@dataclass(frozen=True)
class GuardVerdict:
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def kinds(self) -> list[str]:
        return sorted({p.split(":", 1)[0] for p in self.problems})


@dataclass
class Evidence:
    """What an answer may rest on: the cited texts (as the customer could read them) and the customer's words."""

    cited: Sequence[str]
    customer: Sequence[str] = ()
    _facts: _Facts | None = field(default=None, init=False, repr=False)

    @property
    def facts(self) -> _Facts:
        if self._facts is None:
            self._facts = _Facts.of(self.cited, self.customer)
        return self._facts


@dataclass
class _Facts:
    numbers: set[str]
    times: set[str]
    customer_numbers: set[str]
    text: str
    promises: set[str]

    @classmethod
    def of(cls, cited: Sequence[str], customer: Sequence[str]) -> _Facts:
        text = "\n".join(cited)
        numbers: set[str] = set()
        for match in _NUMBER.finditer(text):
            numbers.update(_values(match.group(0)))
        customer_numbers: set[str] = set()
        for match in _NUMBER.finditer("\n".join(customer)):
            customer_numbers.update(_values(match.group(0)))
        times = {_clock(m) for m in _TIME.finditer(text)}
        return cls(numbers, times, customer_numbers, text.lower(), set(_promises(text)))


class OutputGuard:
    def __init__(self, instructions: str, *, canary: str | None = None, detector: InjectionDetector | None = None,
                 shingle_words: int = SHINGLE_WORDS) -> None:
        self._canary = canary
        self._detector = detector or InjectionDetector()
        self._shingle_words = shingle_words
        self._shingles = set(_shingles(instructions, shingle_words))

    def check(self, answer: str, evidence: Evidence) -> GuardVerdict:
        problems: list[str] = []
        problems += self._leaks(answer)
        injected = self._detector.find(answer)
        if injected is not None:
            problems.append("injection: obeyed or repeated an instruction")
        problems += ["placeholder: never issued" for _ in PLACEHOLDER.finditer(answer)]  # issued ones are restored
        problems += _links(answer, evidence.facts)
        problems += _numbers(answer, evidence.facts)
        problems += [f"promise: {kind} not in the cited text" for kind in _promises(answer)
                     if kind not in evidence.facts.promises]
        return GuardVerdict(tuple(problems))

    def _leaks(self, answer: str) -> list[str]:
        if self._canary and self._canary.lower() in answer.lower():
            return ["leak: canary"]
        if self._shingles and self._shingles.intersection(_shingles(answer, self._shingle_words)):
            return ["leak: instructions quoted"]
        return []


def _shingles(text: str, size: int) -> Iterable[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return (tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def _links(answer: str, facts: _Facts) -> list[str]:
    problems = []
    found = [m.group(0) for m in _URL.finditer(answer)] + [m.group(0) for m in _EMAIL.finditer(answer)]
    rest = _EMAIL.sub(" ", _URL.sub(" ", answer))
    found += [m.group(0) for m in _DOMAIN.finditer(rest)]
    for link in found:
        core = link.rstrip(".,;:!?)").lower()
        core = re.sub(r"^https?://", "", core).rstrip("/")
        if core and core not in facts.text:
            problems.append("link: not in the cited text")
    return problems


def _numbers(answer: str, facts: _Facts) -> list[str]:
    problems: list[str] = []
    text = _ENUMERATION.sub(" ", answer)
    for match in _TIME.finditer(text):
        hour, minute = _clock_parts(match)
        if _clock(match) in facts.times:
            continue
        parts = {str(hour)} | ({str(minute)} if minute else set())
        if not parts <= facts.numbers:
            problems.append("number: time not in the cited text")
    text = _TIME.sub(" ", text)
    for match in _MONEY.finditer(text):
        if not set(_values(match.group(1) or match.group(2))) <= facts.numbers:
            problems.append("number: price not in the cited text")
    for match in _PERCENT.finditer(text):
        value = match.group(1) or match.group(2) or match.group(3)
        if not set(_values(value)) <= facts.numbers:
            problems.append("number: percentage not in the cited text")
    text = _PERCENT.sub(" ", _MONEY.sub(" ", text))
    for match in _NUMBER.finditer(text):
        if not set(_values(match.group(0))) <= facts.numbers | facts.customer_numbers:
            problems.append("number: not in the cited text")
    return problems


def _values(token: str) -> list[str]:
    """Canonical values of a number token: "1,200.00" -> ["1200"], "1.5" -> ["1.5"], "3,4" -> ["3", "4"]."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        token = token.replace(",", "")
    pieces = token.split(",")
    values = []
    for piece in pieces:
        if piece.count(".") > 1:  # a version or a date: each part on its own
            values += [_canonical(p) for p in piece.split(".") if p]
        elif piece:
            values.append(_canonical(piece))
    return values


def _canonical(number: str) -> str:
    try:
        value = Decimal(number)
    except InvalidOperation:
        return number
    normalized = value.normalize()
    return format(normalized, "f")


def _clock_parts(match: re.Match[str]) -> tuple[int, int]:
    if match.group(4) is not None:
        return int(match.group(4)), int(match.group(5))
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    meridiem = match.group(3).lower().replace(".", "")
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return hour, minute


def _clock(match: re.Match[str]) -> str:
    hour, minute = _clock_parts(match)
    return f"{hour:02d}:{minute:02d}"


def _promises(text: str) -> list[str]:
    cleaned = _NOT_A_PROMISE.sub(" ", text)
    lowered = cleaned.lower()
    kinds = []
    for kind, terms in PROMISE_TERMS.items():
        for term in terms:
            if _CJK_OR_TAMIL.search(term) or not term[0].isalnum():
                hit = term in lowered
            else:
                hit = re.search(rf"\b{re.escape(term)}\b", lowered) is not None
            if hit:
                kinds.append(kind)
                break
    return kinds
