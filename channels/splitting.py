"""Cut long replies into parts that fit a channel's length limit, at natural boundaries.

Twilio refuses WhatsApp bodies over 1,600 characters and Telegram messages over 4,096.
Cutting mid-sentence reads badly, so we prefer paragraph, then sentence (Latin and
CJK), then word boundaries, and only hard-cut a single unbroken run longer than the
limit. Length is counted in UTF-16 code units, as both providers count it (an emoji is
two), which is never less than the character count.
"""
from __future__ import annotations

import re

# A sentence ends at . ! ? … (followed by whitespace) or at CJK 。！？ (no space needed).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*")
_CJK_ENDS = ("。", "！", "？")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\s+")


def text_length(text: str) -> int:
    """Length as the provider counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def clip_text(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, at a word boundary when one is near, ending in ``ellipsis``.

    Cut the *plain* text, then escape it for markup: cutting escaped text can split ``&amp;``.
    """
    text = text.strip()
    if text_length(text) <= limit:
        return text
    room = limit - text_length(ellipsis)
    if room < 2:
        raise ValueError("limit leaves no room for the text")
    head = _hard_cut(text, room)[0]
    word_end = head.rfind(" ")
    if word_end >= len(head) // 2:
        head = head[:word_end]
    return head.rstrip() + ellipsis


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into ordered parts of at most ``limit`` units; short text comes back as one part."""
    if limit < 2:
        raise ValueError("limit must allow at least one surrogate pair")
    stripped = text.strip()
    if not stripped:
        return []
    if text_length(stripped) <= limit:
        return [stripped]
    return _pack(_pieces(stripped, limit), limit)


def _pieces(text: str, limit: int) -> list[tuple[str, str]]:
    """Break text into (piece, separator-before) pairs each no longer than ``limit``."""
    out: list[tuple[str, str]] = []
    for p_index, paragraph in enumerate(_split_keep(_PARAGRAPH, text)):
        separator = "\n\n" if p_index else ""
        sentences = _split_keep(_SENTENCE_END, paragraph)
        for s_index, sentence in enumerate(sentences):
            sep = separator if s_index == 0 else _sentence_gap(sentences[s_index - 1])
            if text_length(sentence) <= limit:
                out.append((sentence, sep))
                continue
            for w_index, word in enumerate(_split_keep(_WORD, sentence)):
                wsep = sep if w_index == 0 else " "
                for h_index, chunk in enumerate(_hard_cut(word, limit)):
                    out.append((chunk, wsep if h_index == 0 else ""))
    return out


def _sentence_gap(previous: str) -> str:
    """CJK sentences are written without a space between them; Latin ones with one."""
    return "" if previous.endswith(_CJK_ENDS) else " "


def _split_keep(pattern: re.Pattern[str], text: str) -> list[str]:
    return [part.strip() for part in pattern.split(text) if part.strip()]


def _hard_cut(word: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for char in word:
        size = text_length(char)
        if used + size > limit:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += size
    if current:
        chunks.append("".join(current))
    return chunks


def _pack(pieces: list[tuple[str, str]], limit: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for piece, separator in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if text_length(candidate) <= limit:
            current = candidate
        else:
            parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts
