"""The languages supportlah serves customers in, in one table: the code the pipeline uses, the name
settings and staff use (``SUPPORTLAH_BUSINESS_LANGUAGES``, the ticket card), the name a customer reads,
and the name a model is told to reply in. Every list of language codes elsewhere is read from here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    native: str
    prompt_name: str  # as a model is asked to reply ("Simplified Chinese", not just "Chinese")


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "English", "English"),
    Language("zh", "Chinese", "中文", "Simplified Chinese"),
    Language("ms", "Malay", "Bahasa Melayu", "Malay (Bahasa Melayu)"),
    Language("ta", "Tamil", "தமிழ்", "Tamil"),
)
LANGUAGE_CODES: tuple[str, ...] = tuple(entry.code for entry in LANGUAGES)
DEFAULT_LANGUAGE = "en"  # a customer whose language we cannot tell is answered in English


class UnknownLanguage(ValueError):
    pass


def find_language(code_or_name: str) -> Language | None:
    """``en``, ``EN``, ``English`` or ``中文`` all name the same language; None for any other."""
    wanted = code_or_name.strip().casefold()
    for candidate in LANGUAGES:
        if wanted in (candidate.code, candidate.name.casefold(), candidate.native.casefold()):
            return candidate
    return None


def language_or_default(code: str | None) -> Language:
    """The language ``code`` names, or the default language for None or a code we do not serve."""
    found = find_language(code) if code else None
    return found if found is not None else language(DEFAULT_LANGUAGE)


def language(code_or_name: str) -> Language:
    """As :func:`find_language`, for input a person typed: an unknown language is refused with the list."""
    found = find_language(code_or_name)
    if found is not None:
        return found
    known = ", ".join(f"{lang.code} ({lang.name})" for lang in LANGUAGES)
    raise UnknownLanguage(f"unknown language {code_or_name!r}: use one of {known}")
