"""Streaming the ``answer`` field of a structured reply to web chat while it is written.

The model writes JSON (``{"answer": "...", "citations": [...], ...}``); the customer
must see only the answer text, with placeholders restored, and nothing that the
output guard would stop. :class:`AnswerFieldDecoder` pulls the answer string out
of the JSON fragments as they arrive (escapes split across fragments included);
:class:`DeltaRelay` forwards it at word boundaries only after a provisional check
of everything so far, and goes quiet for good the moment that check fails. The
final reply (checked against the *cited* sources) always replaces what was streamed.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

_ANSWER_KEY = re.compile(r'"answer"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_IDEOGRAPH = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")  # Tamil separates words with spaces
_CJK_PUNCT = frozenset("，。！？、；：」』）")


class AnswerFieldDecoder:
    """Feed raw JSON text; get back the newly decoded characters of the ``answer`` string."""

    def __init__(self) -> None:
        self._raw = ""
        self._pos: int | None = None  # index just after the opening quote once found
        self.done = False

    def feed(self, piece: str) -> str:
        self._raw += piece
        if self.done:
            return ""
        if self._pos is None:
            match = _ANSWER_KEY.search(self._raw)
            if match is None:
                return ""
            self._pos = match.end()
        out: list[str] = []
        raw, pos = self._raw, self._pos
        while pos < len(raw):
            char = raw[pos]
            if char == '"':
                self.done = True
                pos += 1
                break
            if char != "\\":
                out.append(char)
                pos += 1
                continue
            if pos + 1 >= len(raw):
                break  # the escape continues in the next fragment
            code = raw[pos + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                pos += 2
                continue
            if code != "u":
                out.append(code)  # not valid JSON; keep the character rather than stall
                pos += 2
                continue
            if pos + 6 > len(raw):
                break
            unit = int(raw[pos + 2 : pos + 6], 16)
            if 0xD800 <= unit < 0xDC00:  # a surrogate pair needs its second half
                if pos + 12 > len(raw):
                    break
                low = int(raw[pos + 8 : pos + 12], 16)
                out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
                pos += 12
            else:
                out.append(chr(unit))
                pos += 6
        self._pos = pos
        return "".join(out)


class StreamState:
    """Shared by every model call of one answer: did the customer see anything, and may they see more."""

    def __init__(self) -> None:
        self.streamed = False
        self.stopped = False


class DeltaRelay:
    def __init__(
        self,
        on_delta: Callable[[str], Awaitable[None]],
        *,
        render: Callable[[str], str],
        acceptable: Callable[[str], bool],
        state: StreamState,
    ) -> None:
        """``render`` turns model text into customer text (placeholders restored, markers removed);
        ``acceptable`` is the provisional guard over everything rendered so far."""
        self._on_delta = on_delta
        self._render = render
        self._acceptable = acceptable
        self._state = state
        self._decoder = AnswerFieldDecoder()
        self._text = ""
        self._sent = ""

    async def feed(self, raw_piece: str) -> None:
        if self._state.stopped:
            return
        self._text += self._decoder.feed(raw_piece)
        end = len(self._text) if self._decoder.done else _safe_boundary(self._text)
        if end <= 0:
            return
        shown = self._render(self._text[:end])
        if not shown.startswith(self._sent) or len(shown) == len(self._sent):
            return
        if not self._acceptable(shown):
            self._state.stopped = True
            return
        piece = shown[len(self._sent):]
        self._sent = shown
        self._state.streamed = True
        await self._on_delta(piece)


def _safe_boundary(text: str) -> int:
    """The longest prefix that ends between two words: no number, link or placeholder is cut."""
    for end in range(len(text), 0, -1):
        before = text[end - 1]
        if before.isspace() or before in _CJK_PUNCT:
            return end
        if end < len(text) and _IDEOGRAPH.match(before) and _IDEOGRAPH.match(text[end]):
            return end
    return 0
