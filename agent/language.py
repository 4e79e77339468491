"""Which language to answer in: ``en``, ``zh``, ``ms`` or ``ta``.

Customer messages are short, mixed and informal, so statistical detectors alone
misfire ("ok" comes out Slovak, Malay comes out Indonesian, Singlish comes out
anything). We decide in three steps, cheapest and surest first:

1. Script: Han characters mean Chinese, Tamil script means Tamil.
2. Latin text: a Malay function-word lexicon against an English one (Singlish
   particles count as English), blended with langdetect's probabilities; its
   Indonesian profile stands in for Malay, which it lacks.
3. Nothing informative ("ok", "thanks", "?", "1"): keep the conversation's
   language (``hint``).

Unsupported languages fall back to English, the business's lingua franca.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Iterable

import langdetect
from langdetect.detector_factory import DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from config.languages import DEFAULT_LANGUAGE, LANGUAGE_CODES

logger = logging.getLogger(__name__)


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TAMIL = re.compile(r"[\u0b80-\u0bff]")
_LATIN_WORD = re.compile(r"[a-zA-Z][a-zA-Z']*")

# Words that are Malay and (practically) never English. Loanwords shared with
# English ("pizza", "pax") are deliberately absent.
MALAY_WORDS = frozenset(
    """
    berapa harga boleh saya nak tak tidak untuk dengan ke di ada bila buka tutup terima kasih
    tolong perkhidmatan servis apa mana siapa bagaimana macam mana kenapa mengapa ini itu
    hari esok semalam pagi petang malam minggu bulan tahun jam pukul waktu kerja cuti
    isnin selasa rabu khamis jumaat sabtu ahad rumah sejuk panas rosak baiki baru lama
    tukar bayar bayaran murah mahal tempahan tempah batal pembatalan jaminan wang
    pulangan kawasan caj pengangkutan kami anda awak kita dia mereka sudah dah belum lagi
    juga atau dan yang pada dari kepada sahaja saja sila mahu mau hendak perlu datang
    pergi boleh kah ke adakah bolehkah berapakah encik puan cik tuan maaf selamat
    bersih besar kecil isi semula tambah termasuk harganya
    sebulan setahun sehari berapa lama cepat segera hujung kedai pejabat alamat
    bagi beri berikan ialah adalah kena memang betul biasa lepas sebelum selepas sampai
    """.split()
)

# Frequent English function/content words in support messages.
ENGLISH_WORDS = frozenset(
    """
    the a an is are was were be been do does did how much many what when where which who why
    you your yours i my me we our us it its this that these those there here to for of in on
    at by with from and or but not no if can could would will should shall may might must
    have has had get got please price prices cost costs service services book booking cancel
    open close closed hours today tomorrow much any some about need want help unit units
    check don't can't i'm it's what's how's anyone
    """.split()
)

# Singlish discourse particles and idioms: English for our purposes.
SINGLISH_MARKERS = frozenset("lah lor leh meh hor sia liao ah mah wah alamak shiok".split())
_SINGLISH_PHRASES = re.compile(r"\b(can or not|got or not|how much ah|is it)\b", re.IGNORECASE)

# Carry no language signal on their own; short messages made of these keep the hint.
NEUTRAL_WORDS = frozenset(
    """
    ok okay okie oki k kk yes yeah yep no nope hi hello hey bye thanks thank thx tq ty
    noted sure alright cool great good nice lol haha hahaha hmm ya yah
    """.split()
)

_LANGDETECT_ALIASES = {"id": "ms", "ms": "ms", "zh-cn": "zh", "zh-tw": "zh", "en": "en", "ta": "ta"}


class LanguageDetector:
    """Hint-aware language detection; owns its own seeded langdetect factory.

    Deterministic: the langdetect factory is created here with seed 0 rather
    than using langdetect's process-wide one.
    """

    def __init__(self, supported: Iterable[str] = LANGUAGE_CODES, fallback: str = DEFAULT_LANGUAGE) -> None:
        self.supported = tuple(supported)
        if fallback not in self.supported:
            raise ValueError(f"fallback language {fallback!r} is not among {self.supported}")
        self.fallback = fallback
        self._factory: DetectorFactory | None = None
        self._factory_lock = threading.Lock()

    def __call__(self, text: str, hint: str | None = None) -> str:
        return self.detect(text, hint)

    def detect(self, text: str, hint: str | None = None) -> str:
        hint = hint if hint in self.supported else None
        text = text or ""
        by_script = self._by_script(text)
        if by_script is not None:
            return by_script
        return self._latin(text, hint)

    # -- step 1: script --------------------------------------------------------
    def _by_script(self, text: str) -> str | None:
        han = len(_HAN.findall(text))
        tamil = len(_TAMIL.findall(text))
        if tamil and tamil >= han and "ta" in self.supported:
            return "ta"
        if han and "zh" in self.supported:
            return "zh"
        return None

    # -- step 2 and 3: Latin text ----------------------------------------------
    def _latin(self, text: str, hint: str | None) -> str:
        words = [w.lower().strip("'") for w in _LATIN_WORD.findall(text)]
        informative = [w for w in words if w not in NEUTRAL_WORDS]
        if not informative:
            return hint or self.fallback

        malay = sum(1 for w in informative if w in MALAY_WORDS)
        english = sum(1 for w in informative if w in ENGLISH_WORDS)
        english += sum(1 for w in informative if w in SINGLISH_MARKERS)
        english += 2 * len(_SINGLISH_PHRASES.findall(text))

        if not (malay or english) and len(informative) < 4:
            return hint or self.fallback  # e.g. a bare service name

        scores = {"en": float(english), "ms": float(malay)}
        # langdetect is noise on one or two words; weigh it in as the message grows.
        weight = min(1.0, len(informative) / 4.0) * 2.0
        if abs(english - malay) > weight + 0.5:
            # Decided: langdetect (at most ``weight``) and the hint (0.5) cannot overturn this
            # margin, so skip it; it is by far the slowest step (~3 ms on a sentence).
            best = "en" if english > malay else "ms"
            return best if best in self.supported else self.fallback
        for lang, prob in self._langdetect(text).items():
            if lang in scores:
                scores[lang] += weight * prob
        if hint in scores:
            scores[hint] += 0.5  # ties and near-ties keep the conversation's language

        best = max(scores, key=lambda lang: scores[lang])
        if scores[best] <= 0.5:  # nothing recognisable either way
            return hint or self.fallback
        return best if best in self.supported else self.fallback

    def _langdetect(self, text: str) -> dict[str, float]:
        detector = self._get_factory().create()
        detector.append(text)
        try:
            ranked = detector.get_probabilities()
        except LangDetectException:  # no features (digits/punctuation only)
            logger.debug("langdetect found no features")
            return {}
        probs: dict[str, float] = {}
        for item in ranked:
            lang = _LANGDETECT_ALIASES.get(item.lang)
            if lang is not None:
                probs[lang] = probs.get(lang, 0.0) + item.prob
        return probs

    def _get_factory(self) -> DetectorFactory:
        with self._factory_lock:
            if self._factory is None:
                factory = DetectorFactory()
                factory.seed = 0
                factory.load_profile(os.path.join(os.path.dirname(langdetect.__file__), "profiles"))
                self._factory = factory
            return self._factory


@functools.cache
def default_detector() -> LanguageDetector:
    """One shared detector: its langdetect profiles take ~0.5 s to load."""
    return LanguageDetector()


def detect_language(text: str, hint: str | None = None) -> str:
    """The customer's language, one of ``config.languages.LANGUAGE_CODES``; ``hint`` decides short messages."""
    return default_detector().detect(text, hint)
