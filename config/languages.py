"""The languages supportlah serves customers in, in one table: the code the pipeline uses, the name
settings and prompts use (``SUPPORTLAH_BUSINESS_LANGUAGES``), and the name a customer reads."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    native: str


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "English"),
    Language("zh", "Chinese", "中文"),
    Language("ms", "Malay", "Bahasa Melayu"),
    Language("ta", "Tamil", "தமிழ்"),
)


class UnknownLanguage(ValueError):
    pass


def find_language(code_or_name: str) -> Language | None:
    """``en``, ``EN``, ``English`` or ``中文`` all name the same language; None for any other."""
    wanted = code_or_name.strip().casefold()
    for candidate in LANGUAGES:
        if wanted in (candidate.code, candidate.name.casefold(), candidate.native.casefold()):
            return candidate
    return None


def language(code_or_name: str) -> Language:
    """As :func:`find_language`, for input a person typed: an unknown language is refused with the list."""
    found = find_language(code_or_name)
    if found is not None:
        return found
    known = ", ".join(f"{lang.code} ({lang.name})" for lang in LANGUAGES)
    raise UnknownLanguage(f"unknown language {code_or_name!r}: use one of {known}")
