"""Two things we must notice before answering: "let me talk to a person" and
topics a bot should not handle alone (complaints, disputes, legal, safety).

Matching is phrase-based on purpose: it is predictable, explainable to staff
and cheap, and both lists are constructor arguments so a business can tune
them. Latin-script phrases match on word boundaries (with common suffixes, so
"complaints" and "lawyers" count); Chinese and Tamil phrases match as
substrings, because neither separates words the way the regexes expect
(Tamil terms are given as stems for that reason: "மனிதர" also catches
"மனிதருடன்", "with a person").
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum

from config.types import HandoffReason

logger = logging.getLogger(__name__)


class SmallTalk(StrEnum):
    """Whole-message pleasantries: answered kindly, never searched or handed off."""

    GREETING = "greeting"
    THANKS = "thanks"


DEFAULT_GREETINGS: tuple[str, ...] = (
    "hi", "hello", "hey", "hi there", "hello there", "good morning", "good afternoon", "good evening",
    "selamat pagi", "selamat petang", "selamat malam", "hai", "helo", "salam",
    "你好", "您好", "哈喽", "早上好", "早安", "晚上好", "வணக்கம்",
)
DEFAULT_THANKS: tuple[str, ...] = (
    "ok", "okay", "ok thanks", "ok thank you", "thanks", "thank you", "thank you so much", "thanks a lot", "thx",
    "tq", "ty", "noted", "noted thanks", "alright", "great", "cool", "ok noted", "okie", "ok lah", "thanks lah",
    "terima kasih", "terima kasih banyak", "baiklah", "baik", "谢谢", "多谢", "谢谢你", "好的", "好", "知道了", "收到",
    "நன்றி", "மிக்க நன்றி", "ரொம்ப நன்றி", "சரி", "thank you very much", "many thanks", "thanks so much",
    "noted with thanks", "terima kasih ya", "谢谢你们", "非常感谢", "感谢",
)


_ARTICLE = r"(?:a |an |the |one |some |your |)(?:real |actual |live |)"
# Whom one talks to ("talk to someone" is a request; "need someone to fix it" is not).
_WHO = _ARTICLE + r"(?:person|human|agent|staff|someone|somebody|people|operator|representative|rep|customer service|boss|manager)"
_HUMAN_ROLE = _ARTICLE + r"(?:human|agent|operator|representative|customer service|manager|real person|live person)"

DEFAULT_HUMAN_REQUEST_PATTERNS: tuple[str, ...] = (
    # English (incl. Singlish)
    rf"\b(?:talk|speak|chat|connect|transfer|pass)(?: me)? (?:to|with) {_WHO}\b",
    rf"\b(?:want|need|get|give me|prefer|wanna) {_HUMAN_ROLE}\b",
    rf"\b(?:want|need|wanna|like|prefer|can i|let me|pls|please) (?:to )?(?:talk|speak|chat) (?:to|with) {_WHO}\b",
    r"\b(?:real|actual|live) (?:person|human|agent|staff)\b",
    r"\bhuman (?:please|pls|plz)\b",
    r"\bare you (?:a )?(?:bot|robot|human|real)\b",
    r"^\s*(?:human|agent|operator|person|staff|representative)\s*[.!?]*\s*$",
    r"\bno bot\b|\bnot (?:a |the )?bot\b",
    # Malay
    r"\b(?:ber)?cakap dengan (?:orang|manusia|staf|kakitangan|ejen|wakil|pekerja)\b",
    r"\b(?:nak|mahu|hendak|mau|boleh) (?:jumpa|hubungi|berhubung dengan|bercakap dengan) (?:orang|manusia|staf|kakitangan|ejen|wakil)\b",
    r"\borang (?:sebenar|betul)\b",
    r"\bmanusia sebenar\b",
    r"\bejen\b",
    r"\bkhidmat pelanggan\b",
)

DEFAULT_HUMAN_REQUEST_SUBSTRINGS: tuple[str, ...] = (
    # Chinese
    "人工", "真人", "客服", "转接", "找人", "工作人员", "真人客服", "活人", "跟人讲", "跟人说",
    # Tamil (stems): human, a person / someone, agent, staff, talk to someone
    "மனிதர", "நபரிடம்", "நபருடன்", "முகவர", "ஊழியர", "ஒருவரிடம் பேச", "ஆளிடம்",
)

DEFAULT_SENSITIVE_TERMS: tuple[str, ...] = (
    # English
    "complaint", "complain", "refund dispute", "dispute", "chargeback", "legal", "lawyer", "lawsuit",
    "sue", "small claims", "police", "injury", "injured", "hurt", "fire", "smoke", "electric shock",
    "electrocuted", "compensation", "damaged my", "scam", "cheat", "cheated", "consumers association",
    # Malay
    "aduan", "mengadu", "pertikaian", "peguam", "saman", "mahkamah", "polis", "cedera", "kecederaan",
    "kebakaran", "terbakar", "pampasan", "ganti rugi", "tipu", "penipuan",
    # Chinese
    "投诉", "退款", "律师", "起诉", "报警", "警察", "受伤", "火灾", "着火", "起火", "赔偿", "触电", "骗",
    # Tamil (stems): complaint, refund, lawyer, police, injury, fire, compensation
    "புகார", "பணத்தைத் திரும்ப", "வழக்கறிஞர", "காவல", "போலீஸ", "காயம", "தீப்பிடி", "தீ விபத்த", "இழப்பீடு",
)

_CJK_OR_TAMIL = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")
# Chatty particles that carry no meaning of their own ("orh ok noted", "ok lah", "thanks ah").
_PARTICLES = frozenset("orh oh ah ahh lah la leh lor loh wah wow hor hmm mm eh ya yeah yup ok okay okie".split())
# Acknowledgements that may open a real question ("ok how much …", "好 多少钱"): never treated as an opener.
_BARE_ACKNOWLEDGEMENTS = frozenset({"ok", "okay", "好", "好的", "baik", "சரி", "great", "cool", "alright"})
_CLAUSE_BREAK = re.compile(r"[,.!?;:，。！？；：…~\n]+|[\U0001F000-\U0001FAFF\u2600-\u27BF]+")
_QUESTION = re.compile(
    r"[?？]"
    r"|\b(?:how|what|when|where|which|who|why|can|could|do|does|is|are|will|would|got|any)\b"
    r"|\b(?:berapa|apa|bila|mana|boleh|ada|bagaimana|kenapa|siapa)\b"
    r"|吗|什么|多少|怎么|哪|几|能不能|可以吗|有没有"
    r"|என்ன|எப்போது|எங்கே|எவ்வளவு|எப்படி|யார்|ஏன்|முடியுமா|உண்டா",
    re.IGNORECASE,
)
_MAX_SMALL_TALK_WORDS = 12
_MAX_SMALL_TALK_CJK = 24


def _letters(text: str) -> str:
    """Lower-cased letters, marks and digits, one space between words; everything else dropped."""
    kept = "".join(ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in text.lower())
    return " ".join(kept.split())


def _asks_something(text: str) -> bool:
    return _QUESTION.search(text) is not None


def _too_long_for_small_talk(normalized: str) -> bool:
    cjk = len(re.findall(r"[\u3400-\u9fff\uf900-\ufaff]", normalized))
    return len(normalized.split()) > _MAX_SMALL_TALK_WORDS or cjk > _MAX_SMALL_TALK_CJK


def _term_pattern(term: str) -> re.Pattern[str] | None:
    """Word-boundary regex for a Latin-script term; ``None`` for substring terms."""
    if _CJK_OR_TAMIL.search(term):
        return None
    body = r"\s+".join(re.escape(part) for part in term.split())
    return re.compile(rf"\b{body}(?:s|es|ed|d|ing|er|ers)?\b", re.IGNORECASE)


class IntentDetector:
    """Finds explicit requests for a person and sensitive topics in a message."""

    def __init__(
        self,
        human_request_patterns: Iterable[str] = DEFAULT_HUMAN_REQUEST_PATTERNS,
        human_request_substrings: Iterable[str] = DEFAULT_HUMAN_REQUEST_SUBSTRINGS,
        sensitive_terms: Iterable[str] = DEFAULT_SENSITIVE_TERMS,
        greetings: Iterable[str] = DEFAULT_GREETINGS,
        thanks: Iterable[str] = DEFAULT_THANKS,
    ) -> None:
        self._greetings = frozenset(g.lower() for g in greetings)
        self._thanks = frozenset(t.lower() for t in thanks)
        self._thanks_openers = tuple(sorted((t for t in self._thanks if t not in _BARE_ACKNOWLEDGEMENTS),
                                            key=len, reverse=True))
        self._human_patterns = [re.compile(p, re.IGNORECASE) for p in human_request_patterns]
        self._human_substrings = tuple(human_request_substrings)
        self._sensitive_regexes: list[re.Pattern[str]] = []
        self._sensitive_substrings: list[str] = []
        for term in sensitive_terms:
            pattern = _term_pattern(term)
            if pattern is None:
                self._sensitive_substrings.append(term)
            else:
                self._sensitive_regexes.append(pattern)

    def wants_human(self, text: str) -> bool:
        normalized = " ".join(text.split())
        return any(p.search(normalized) for p in self._human_patterns) or any(
            s in normalized for s in self._human_substrings
        )

    def sensitive_topic(self, text: str) -> str | None:
        """The sensitive term found (for staff context), or ``None``."""
        normalized = " ".join(text.split())
        for pattern in self._sensitive_regexes:
            match = pattern.search(normalized)
            if match:
                return match.group(0).lower()
        for term in self._sensitive_substrings:
            if term in normalized:
                return term
        return None

    def small_talk(self, text: str) -> SmallTalk | None:
        """A pleasantry making up the whole message; ``None`` otherwise.

        "ok!", "谢谢 🙏" and a lone "👍" are small talk, and so is a short message that opens or
        closes with one and asks nothing ("谢谢你们！我的膝盖好多了 🙏", "orh ok noted, thanks 👌",
        "Terima kasih, semoga maju jaya!"): the customer is being kind, not asking. A question
        anywhere in it ("hi, how much is …?") makes it a question.
        """
        normalized = _letters(text)  # punctuation and emoji ("谢谢 🙏", "ok!!") do not count
        if not normalized and any(unicodedata.category(ch) == "So" for ch in text):
            return SmallTalk.THANKS  # a lone "👍"
        if normalized in self._greetings:
            return SmallTalk.GREETING
        if normalized in self._thanks:
            return SmallTalk.THANKS
        if _asks_something(text) or _too_long_for_small_talk(normalized):
            return None
        whole = self._pleasantry(normalized)
        if whole is not None:
            return whole
        clauses = [c for c in (_letters(part) for part in _CLAUSE_BREAK.split(text)) if c]
        found = [kind for kind in (self._pleasantry(clauses[0]), self._pleasantry(clauses[-1])) if kind]
        if not found:
            return None
        return SmallTalk.THANKS if SmallTalk.THANKS in found else SmallTalk.GREETING

    def _pleasantry(self, normalized: str) -> SmallTalk | None:
        """A clause that is only a greeting or only thanks, with chatty particles ("orh", "lah") dropped."""
        words = [w for w in normalized.split() if w not in _PARTICLES]
        for candidate in dict.fromkeys((normalized, " ".join(words))):
            if candidate in self._greetings:
                return SmallTalk.GREETING
            if candidate in self._thanks:
                return SmallTalk.THANKS
        # "thank you so much for your help": a thanks phrase followed by at most a few words
        for phrase in self._thanks_openers:
            if candidate.startswith(phrase + " ") and len(candidate.split()) <= len(phrase.split()) + 4:
                return SmallTalk.THANKS
            if _CJK_OR_TAMIL.search(phrase) and candidate.startswith(phrase) and len(candidate) <= len(phrase) + 8:
                return SmallTalk.THANKS
        return None

    def needs_search(self, text: str) -> bool:
        """Whether an agent would search the documents for this message: not for an empty one,
        small talk or a request for a person, which get canned replies."""
        return bool(text.strip()) and self.small_talk(text) is None and not self.wants_human(text)

    def classify(self, text: str) -> HandoffReason | None:
        """Escalation reason this message carries by itself; a person request wins."""
        if self.wants_human(text):
            return HandoffReason.CUSTOMER_REQUEST
        if self.sensitive_topic(text) is not None:
            return HandoffReason.SENSITIVE_TOPIC
        return None
