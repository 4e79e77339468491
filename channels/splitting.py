"""Split long replies at sentence boundaries for channels with a length limit."""
from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n{2,}|\n(?=[-*•\d])")


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut after sentences where possible, in order.

    A single sentence longer than the limit is cut at the last space before it, and
    only as a last resort mid-word.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    sentences = [s for s in _SENTENCE_END.split(text) if s and s.strip()]
    parts: list[str] = []
    current = ""
    for sentence in sentences:
        sentence = sentence.strip()
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > limit // 2 else limit
            head, sentence = sentence[:cut].rstrip(), sentence[cut:].lstrip()
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        joiner = "" if _is_cjk_boundary(current, sentence) else " "
        candidate = f"{current}{joiner}{sentence}" if current else sentence
        if len(candidate) <= limit:
            current = candidate
        else:
            parts.append(current)
            current = sentence
    if current:
        parts.append(current)
    return parts


def _is_cjk_boundary(left: str, right: str) -> bool:
    return bool(left) and left[-1] in "。！？" and bool(right) and ord(right[0]) > 0x2E80
