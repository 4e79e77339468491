"""What the web chat offers before the first message, and the visitor's own data for "my data".

The greeting names the business (``SUPPORTLAH_WEB_GREETING`` replaces it). The example questions
are ``SUPPORTLAH_WEB_EXAMPLE_QUESTIONS`` when set, otherwise drawn from the knowledge base's
headings: headings that are questions first ("Do you deliver?"), then topics ("Cakes"), taken in
turn from each document so one long FAQ does not fill the list, documents in the business's first
language before the others. Documents' titles (a path of one heading) come last: they say little,
but a small knowledge base may have nothing else.
"""
from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from agent.texts import text
from channels.messages import Channel
from memory.pdpa import PersonalData
from rag.chunking import HEADING_SEPARATOR

EXAMPLES_SHOWN = 4
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*")
_LONGEST_EXAMPLE = 80


def examples_from_headings(headings: list[tuple[str, str | None, str]], *, language: str,
                           limit: int = EXAMPLES_SHOWN) -> list[str]:
    """``headings``: (document, its language, heading path) in reading order (``Catalog.headings``);
    documents in ``language`` (the business's first) come before the others."""
    own: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    titles: list[str] = []
    for document, document_language, path in headings:
        parts = path.split(HEADING_SEPARATOR)
        heading = _NUMBERING.sub("", parts[-1]).strip()
        if not heading or len(heading) > _LONGEST_EXAMPLE:
            continue
        if len(parts) < 2:  # a title: used only when the documents have no sections of their own
            titles.append(heading)
            continue
        seen = (own if document_language in (language, None) else other).setdefault(document, [])
        if heading not in seen:
            seen.append(heading)
    picked = [*_questions_then_topics(own), *_questions_then_topics(other), *titles]
    return list(dict.fromkeys(picked))[:limit]


def _questions_then_topics(per_document: dict[str, list[str]]) -> list[str]:
    """Each document's headings in turn (one long FAQ does not fill the list), questions first."""
    questions, topics = [], []
    rounds = max((len(items) for items in per_document.values()), default=0)
    for index in range(rounds):
        for items in per_document.values():
            if index < len(items):
                (questions if items[index].endswith(("?", "？")) else topics).append(items[index])
    return questions + topics


class KnowledgeIntro:
    """The web chat's ``ChatIntro``: configured examples, or the KB's headings (re-read every ``ttl`` s)."""

    def __init__(self, headings: Callable[[], Awaitable[list[tuple[str, str | None, str]]]], *,
                 business_name: str, language: str, greeting: str | None, configured: list[str],
                 ttl: float = 60.0) -> None:
        self._headings = headings
        self._language = language
        self.greeting = greeting or text("greeting", language, business=business_name)
        self._configured = configured
        self._ttl = ttl
        self._cached: tuple[float, list[str]] | None = None

    async def examples(self) -> list[str]:
        if self._configured:
            return list(self._configured)
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self._ttl:
            self._cached = (now, examples_from_headings(await self._headings(), language=self._language))
        return list(self._cached[1])


class WebVisitorData:
    """The web chat's ``VisitorData``: the PDPA export of the visitor's contact, recorded as an access request."""

    def __init__(self, personal_data: PersonalData) -> None:
        self._data = personal_data

    async def export(self, channel: Channel, sender_id: str) -> dict | None:
        contact = await self._data.find_contact(channel.value, sender_id)
        if contact is None:
            return None
        await self._data.open_request(contact.contact_id, "access", channel.value, status="done")
        return await self._data.export(contact.contact_id)
