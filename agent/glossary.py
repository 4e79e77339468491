"""A small Malay/Chinese/Tamil -> English glossary of customer-service words.

Most businesses write their documents in English while customers ask in
their own language. Dense retrieval bridges that only partly (multilingual e5
is small), and word matching not at all. Glossing the few words that carry
a support question ("harga" = price, "保修" = warranty, "ரத்து" = cancel) into
English lets BM25 and the answerer's term matching see what is asked. The
original words stay in the text, so nothing is lost when a document is in the
customer's language. Only generic customer-service words ship here; a
business's own service names come from its vocabulary file (``config.vocabulary``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

GENERIC_GLOSSARY: Mapping[str, str] = MappingProxyType(
    {
        # Malay (matched as whole words)
        "harga": "price",
        "caj": "fee charge",
        "kos": "cost",
        "bayaran": "payment",
        "pembayaran": "payment",
        "bayar": "pay",
        "jaminan": "warranty",
        "waranti": "warranty",
        "batal": "cancel",
        "pembatalan": "cancellation",
        "tempahan": "booking",
        "tempah": "book",
        "buka": "open",
        "tutup": "closed",
        "ahad": "sunday",
        "sabtu": "saturday",
        "cuti umum": "public holiday",
        "berapa lama": "how long",
        "pengangkutan": "transport",
        "servis": "service",
        "waktu operasi": "opening hours",
        "waktu": "hours time",
        "alamat": "address",
        "pulangan wang": "refund",
        "bayaran balik": "refund",
        "jenama": "brand",
        "hari yang sama": "same day",
        "cara": "methods",
        # Chinese (matched as substrings)
        "多少钱": "price",
        "价格": "price",
        "价钱": "price",
        "收费": "charge fee",
        "费用": "fee",
        "保修": "warranty",
        "取消": "cancel",
        "改期": "reschedule",
        "预约": "booking book",
        "营业时间": "opening hours",
        "营业": "open",
        "星期天": "sunday",
        "星期日": "sunday",
        "周日": "sunday",
        "公共假期": "public holiday",
        "交通费": "transport fee",
        "付款": "payment pay",
        "订金": "deposit",
        "退款": "refund",
        "多久": "how long",
        "多长时间": "how long",
        "品牌": "brand",
        "热线": "hotline",
        "当天": "same-day",
        # Tamil (stems, matched as substrings)
        "விலை": "price",
        "கட்டணம்": "fee charge",
        "உத்தரவாத": "warranty",
        "ரத்து": "cancel",
        "முன்பதிவ": "booking",
        "ஞாயிற்று": "sunday",
        "ஞாயிறு": "sunday",
        "திறந்த": "open",
        "போக்குவரத்து": "transport",
        "கட்டண முறை": "payment methods",
        "நேரம்": "hours time",
        "நாட்கள்": "days",
    }
)

_UNSPACED = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")


class Glossary:
    """Finds the support words of a question and glosses them in English."""

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        """``entries``: the business's own phrases (``config.vocabulary``), on top of the generic ones."""
        entries = {**GENERIC_GLOSSARY, **(entries or {})}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for phrase in sorted(entries, key=len, reverse=True):  # longest first: "berapa lama" before "lama"
            if _UNSPACED.search(phrase):
                pattern = re.compile(re.escape(phrase))
            else:
                pattern = re.compile(rf"\b{re.escape(phrase)}\b", re.IGNORECASE)
            self._patterns.append((pattern, entries[phrase]))

    def glosses(self, question: str) -> list[str]:
        """English glosses of the glossary phrases in ``question``, in the order they appear."""
        found: list[tuple[int, str]] = []
        remaining = question
        for pattern, english in self._patterns:
            match = pattern.search(remaining)
            if match:
                found.append((match.start(), english))
                # A longer phrase consumes its parts; blanking keeps later positions right.
                remaining = pattern.sub(lambda m: " " * len(m.group()), remaining)
        return [english for _, english in sorted(found)]

    def translate(self, question: str) -> str:
        """``question`` with glossary phrases replaced by their English glosses (for term matching)."""
        for pattern, english in self._patterns:
            question = pattern.sub(f" {english} ", question)
        return question

    def expand(self, question: str) -> str:
        """``question`` plus its English glosses (unchanged if there are none)."""
        glosses = self.glosses(question)
        return f"{question} ({'; '.join(glosses)})" if glosses else question
