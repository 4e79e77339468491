"""Typed entities ("slots") that customer questions turn on: property type, service, area…

A follow-up like "and for a condo?" only makes sense against the previous question,
and the way to merge the two is to swap the entity of the same type ("an HDB flat" →
"a condo"). Stated facts ("I live in a condo in Bishan") are the same entities said
in the first person. Both need to know which words name which kind of thing, in
English, Chinese, Malay and Tamil, so that knowledge lives here as data. The default
lexicon fits the sample business (aircon and home services in Singapore); a business
passes its own to :class:`SlotLexicon`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# type -> canonical value -> surface forms (any language)
DEFAULT_SLOTS: Mapping[str, Mapping[str, Sequence[str]]] = MappingProxyType({
    "property": {
        "hdb": ("HDB flat", "HDB flats", "HDB", "flat HDB", "rumah pangsa", "组屋", "政府组屋", "HDB வீடு"),
        "condo": ("executive condominium", "executive condo", "condominium", "condominiums", "condo", "condos",
                  "apartment", "共管公寓", "公寓", "kondominium", "kondo", "காண்டோ"),
        "landed": ("landed property", "landed house", "landed home", "landed", "terrace house", "terrace",
                   "semi-detached", "semi-D", "bungalow", "有地住宅", "有地", "排屋", "洋房", "rumah teres",
                   "rumah landed", "banglo", "தனி வீடு"),
    },
    "service": {
        "general service": ("general service", "general servicing", "normal service", "basic service",
                            "普通清洗", "普通保养", "servis am", "servis biasa", "பொது சர்வீஸ்", "ஜெனரல் சர்வீஸ்"),
        "chemical wash": ("chemical wash", "chemical cleaning", "化学清洗", "化学洗", "cucian kimia", "cuci kimia",
                          "கெமிக்கல் வாஷ்"),
        "chemical overhaul": ("chemical overhaul", "overhaul", "化学大修", "大修", "baik pulih kimia", "overhaul kimia"),
        "gas top-up": ("gas top-up", "gas top up", "gas topup", "gas refill", "refrigerant top-up", "加冷媒",
                       "加雪种", "tambah gas", "isi gas", "கேஸ் டாப்-அப்"),
        "installation": ("installation", "install", "installing", "安装", "pemasangan", "pasang"),
        "annual package": ("annual service package", "annual package", "service package", "maintenance contract",
                           "年度配套", "保养配套", "pakej tahunan"),
        "leak repair": ("leak test", "leak repair", "refrigerant leak", "测漏"),
        "disposal": ("disposal", "removal of old aircon", "拆除旧冷气"),
    },
    "area": {
        name.lower(): (name,) for name in (
            "Bukit Timah", "Novena", "Toa Payoh", "Bishan", "Queenstown", "Bukit Merah", "Marine Parade", "Kallang",
            "Geylang", "Bedok", "Tampines", "Pasir Ris", "Changi", "Paya Lebar", "Eunos", "Siglap", "Hougang",
            "Sengkang", "Punggol", "Serangoon", "Ang Mo Kio", "Jurong East", "Jurong West", "Clementi",
            "Bukit Batok", "Bukit Panjang", "Choa Chu Kang", "Boon Lay", "Woodlands", "Yishun", "Sembawang",
            "Admiralty", "Mandai", "Lim Chu Kang", "Tuas", "Pioneer", "Jurong Island", "Pulau Ubin",
            "Johor Bahru", "Orchard", "Bugis", "Tanjong Pagar", "Buona Vista", "Holland Village",
        )
    } | {
        "sentosa": ("Sentosa Cove", "Sentosa", "圣淘沙"),
        "city centre": ("city centre", "city center", "CBD", "市中心"),
        "tampines": ("Tampines", "淡滨尼"),
        "ang mo kio": ("Ang Mo Kio", "AMK", "宏茂桥"),
        "bishan": ("Bishan", "碧山"),
        "woodlands": ("Woodlands", "兀兰"),
        "jurong west": ("Jurong West", "裕廊西"),
        "jurong east": ("Jurong East", "裕廊东"),
    },
    "refrigerant": {
        "r32": ("R32", "R-32"),
        "r410a": ("R410A", "R-410A", "R410"),
        "r22": ("R22", "R-22"),
    },
    "brand": {
        name.lower(): (name,) for name in ("Daikin", "Mitsubishi Electric", "Mitsubishi", "Panasonic", "LG",
                                           "Midea", "Fujitsu", "Samsung", "Toshiba", "Hitachi", "York")
    },
})

_UNSPACED = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u0b80-\u0bff]")
ARTICLE = re.compile(r"(?:\b(?:a|an|the|my|our)\s+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Slot:
    type: str
    value: str  # canonical value, e.g. "condo"
    surface: str  # the words as written
    start: int
    end: int


class SlotLexicon:
    """Finds typed entities in text: longest surface form first, never overlapping."""

    def __init__(self, entries: Mapping[str, Mapping[str, Sequence[str]]] = DEFAULT_SLOTS) -> None:
        forms: list[tuple[str, str, str]] = []
        for slot_type, values in entries.items():
            for value, surfaces in values.items():
                forms += [(surface, slot_type, value) for surface in surfaces]
        forms.sort(key=lambda item: len(item[0]), reverse=True)
        self._patterns: list[tuple[re.Pattern[str], str, str]] = []
        for surface, slot_type, value in forms:
            if _UNSPACED.search(surface):  # Chinese and Tamil: substrings (Tamil adds case suffixes)
                pattern = re.compile(re.escape(surface))
            else:
                pattern = re.compile(rf"(?<![\w-]){re.escape(surface)}(?![\w-])", re.IGNORECASE)
            self._patterns.append((pattern, slot_type, value))
        self.types = frozenset(entries)

    def find(self, text: str) -> list[Slot]:
        taken = [False] * len(text)
        found: list[Slot] = []
        for pattern, slot_type, value in self._patterns:
            for match in pattern.finditer(text):
                if any(taken[match.start():match.end()]):
                    continue
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
                found.append(Slot(slot_type, value, match.group(0), match.start(), match.end()))
        return sorted(found, key=lambda slot: slot.start)

    def values(self, text: str, slot_type: str) -> list[str]:
        return [slot.value for slot in self.find(text) if slot.type == slot_type]


def with_article(text: str, slot: Slot) -> tuple[int, str]:
    """Start of ``slot`` including an article or possessive right before it, and that phrase."""
    match = ARTICLE.search(text[: slot.start])
    start = match.start() if match else slot.start
    return start, text[start: slot.end]
