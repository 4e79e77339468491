"""Query terms and answer-type cues for scoring candidate sentences.

Lexical overlap is the extractive answerer's main signal and the confidence
model's "did we find what was asked" feature, so it must work for every
language we serve: Latin and Tamil words (stop words removed, loose prefix
matching stands in for stemming and agglutination) and Chinese character
bigrams (Chinese has no spaces to split on).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from enum import StrEnum

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9\u0b80-\u0bff]+")
_CODE = re.compile(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b")  # "ck-1kg", "a4-b2" stays whole too
_MIN_PREFIX = 4  # "deliver" ~ "delivery", "servis" ~ "service" needs 5, "unit" ~ "units"

STOP_WORDS = frozenset(
    """
    a an the is are was were be been being am do does did done how what when where which who whom why
    can could would will shall should may might must i me my mine we our ours you your yours he she they
    them their it its this that these those there here of to in on at by for with from into about and or
    but if so as any some much many please pls plz tell know want wanna like get got have has had just
    also very really there's what's how's i'm it's don't doesn't lah lor leh meh ah hor ya hi hello hey
    thanks thank ok okay yes no not
    saya aku anda awak kamu kami kita dia mereka ini itu yang di ke dari pada untuk dengan dan atau ada
    apa berapa bila mana boleh tak tidak nak mahu hendak sila tolong ya kah adakah bolehkah berapakah
    """.split()
)
_HAN_STOP_CHARS = frozenset("的了吗嗎呢吧啊呀哦请請问問你您我们們是在和与或就都也还么麼")


class Cue(StrEnum):
    """What kind of fact the question asks for; units that state one get a bonus."""

    PRICE = "price"
    TIME = "time"
    DURATION = "duration"


_QUESTION_CUES: dict[Cue, re.Pattern[str]] = {
    Cue.DURATION: re.compile(r"how long|berapa lama|多久|多长时间|多長時間|எவ்வளவு நேரம்|எத்தனை மணி", re.I),
    Cue.PRICE: re.compile(
        r"how much|\bprice|\bcost|\bcharge|\bfee|\brate|\$|\bberapa\b|\bharga|\bcaj\b|\bbayaran|\bkos\b|\byuran"
        r"|多少钱|多少錢|价格|價格|价钱|收费|收費|费用|費用|几钱|விலை|கட்டணம்|எவ்வளவு",
        re.I,
    ),
    Cue.TIME: re.compile(
        r"what time|\bwhen\b|\bhours\b|\bopen\b|\bclose|\bpukul\b|\bbila\b|\bbuka\b|\btutup\b|\bwaktu\b"
        r"|几点|幾點|时间|時間|营业|營業|நேரம்|எப்போது|திறந்",
        re.I,
    ),
}
_UNIT_CUES: dict[Cue, re.Pattern[str]] = {
    Cue.PRICE: re.compile(r"\$\s?\d|\bS\$|\bSGD\b|\b\d+\.\d\d\b|\bfree\b|\bwaived\b|不收费|免费|percuma", re.I),
    Cue.TIME: re.compile(
        r"\b\d{1,2}(?::\d\d)?\s?(?:am|pm)\b|\d{1,2}\s?点|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day|星期|isnin|ahad",
        re.I,
    ),
    Cue.DURATION: re.compile(
        r"\d[\s-]?(?:hours?|hrs?|minutes?|mins?|days?|weeks?|months?|years?|jam|minit|hari|bulan|tahun)\b"
        r"|小时|小時|分钟|分鐘|\d\s?天|\d\s?个月|\d\s?年",
        re.I,
    ),
}


def question_cues(question: str) -> set[Cue]:
    cues = {cue for cue, pattern in _QUESTION_CUES.items() if pattern.search(question)}
    if Cue.DURATION in cues:
        cues.discard(Cue.PRICE)  # "berapa lama" is not about money
    return cues


def unit_cues(text: str) -> set[Cue]:
    return {cue for cue, pattern in _UNIT_CUES.items() if pattern.search(text)}


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Content terms of ``text``: stemmed words and Chinese character bigrams, in order."""
    lower = text.lower()
    out: list[str] = []
    latin = _HAN_RUN.sub(" ", lower)
    out.extend(_CODE.findall(latin))
    for word in _WORD.findall(latin):
        if word in STOP_WORDS or unicodedata.category(word[0]).startswith("M"):
            continue  # a suffix left behind by glossing a Tamil stem ("ுக்கு") is not a word
        out.append(_stem(word))
    for run in _HAN_RUN.findall(lower):
        for piece in re.split("[" + "".join(_HAN_STOP_CHARS) + "]", run):
            if len(piece) == 1:
                out.append(piece)
            out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
    return out


def script_of(term: str) -> str:
    if _HAN_RUN.search(term):
        return "han"
    if any("\u0b80" <= ch <= "\u0bff" for ch in term):
        return "tamil"
    return "latin"


def term_matches(term: str, vocabulary: Iterable[str]) -> bool:
    """Exact match, or a shared prefix for longer words (plurals, agglutination, "deliver(y)")."""
    for candidate in vocabulary:
        if candidate == term:
            return True
        if len(term) >= _MIN_PREFIX and len(candidate) >= _MIN_PREFIX and (
            candidate.startswith(term) or term.startswith(candidate)
        ):
            return True
    return False


class TermWeights:
    """Inverse document frequency over the candidate units of one question.

    Terms found in no candidate get the highest weight: a question about
    something the documents never mention ("Peru", "laptops") cannot be
    "covered", which is exactly what the confidence model needs to see.
    """

    def __init__(self, documents: Sequence[set[str]]) -> None:
        self._documents = documents
        self._n = len(documents)

    def weight(self, term: str) -> float:
        df = sum(1 for vocabulary in self._documents if term_matches(term, vocabulary))
        return math.log(1.0 + (self._n + 1) / (df + 0.5))
