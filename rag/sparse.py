"""BM25 sparse vectors for Qdrant's IDF modifier.

The split of work: we store BM25's term-frequency saturation as the document-side
value and send 1.0 per unique query term; Qdrant multiplies in
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` at query time. The dot product is
therefore exactly Okapi BM25 and IDF stays correct as documents come and go.

The tokenizer must work for the languages a Singapore business sees: English and
Malay (spaced Latin words), Tamil (spaced, but full of combining marks that
``\\w`` would split on), and Chinese (no spaces: character unigrams + bigrams).
Product codes such as ``CK-1KG-2`` or ``AC2024`` are kept whole *and* split, so
both the exact code and a partial mention ("the 1KG cake") match.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from dataclasses import dataclass

ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his i if in into is it its itself
    just me more most my myself no nor not of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves s t d ll m re ve
    """.split()
)

# Scripts written without spaces between words: index characters and character pairs.
_UNSPACED_RANGES = (
    (0x0E00, 0x0E7F),  # Thai
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B-H
)
_JOINERS = frozenset("-_./")
_MAX_TOKEN_CHARS = 64


def _is_unspaced(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _UNSPACED_RANGES)


def _is_word_char(ch: str) -> bool:
    # Letters, combining marks (Tamil vowel signs, virama) and digits.
    return unicodedata.category(ch)[0] in "LMN"


def _letter_digit_pieces(word: str) -> list[str]:
    """Split ``ac2024`` into ``ac``, ``2024``; returns [] for words of one kind."""
    pieces: list[str] = []
    current = word[0]
    for ch in word[1:]:
        if ch.isdigit() == current[-1].isdigit():
            current += ch
        else:
            pieces.append(current)
            current = ch
    pieces.append(current)
    return pieces if len(pieces) > 1 else []


@dataclass(frozen=True)
class SparseVec:
    """Sorted, de-duplicated term ids and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def from_weights(cls, weights: dict[int, float]) -> SparseVec:
        ordered = sorted(weights.items())
        return cls(tuple(i for i, _ in ordered), tuple(float(v) for _, v in ordered))


def term_id(token: str) -> int:
    """Stable uint32 id for a token (first 4 bytes of blake2b); same on every machine and run."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


class Tokenizer:
    """Lowercased, NFKC-normalized tokens for BM25 (see the module docstring)."""

    def __init__(self, stopwords: frozenset[str] = ENGLISH_STOPWORDS) -> None:
        self.stopwords = stopwords

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).casefold()
        tokens: list[str] = []
        word: list[str] = []
        unspaced: list[str] = []
        n = len(text)
        for i, ch in enumerate(text):
            if _is_unspaced(ch):
                if word:
                    self._emit_word("".join(word), tokens)
                    word = []
                unspaced.append(ch)
                continue
            if unspaced:
                self._emit_unspaced("".join(unspaced), tokens)
                unspaced = []
            if _is_word_char(ch):
                word.append(ch)
            elif (
                ch in _JOINERS
                and word
                and word[-1] not in _JOINERS
                and i + 1 < n
                and _is_word_char(text[i + 1])
                and not _is_unspaced(text[i + 1])
            ):
                word.append(ch)
            elif word:
                self._emit_word("".join(word), tokens)
                word = []
        if word:
            self._emit_word("".join(word), tokens)
        if unspaced:
            self._emit_unspaced("".join(unspaced), tokens)
        return tokens

    def _emit_word(self, run: str, out: list[str]) -> None:
        parts = [p for p in _split_joiners(run) if p]
        if len(parts) > 1 and len(run) <= _MAX_TOKEN_CHARS:
            out.append(run)  # the whole code, e.g. "ck-1kg-2"
        for part in parts:
            if len(part) > _MAX_TOKEN_CHARS:
                continue
            if part not in self.stopwords:
                out.append(part)
            out.extend(_letter_digit_pieces(part))

    @staticmethod
    def _emit_unspaced(run: str, out: list[str]) -> None:
        out.extend(run)
        out.extend(run[j : j + 2] for j in range(len(run) - 1))


def _split_joiners(run: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for ch in run:
        if ch in _JOINERS:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


class BM25SparseEncoder:
    """Turns text into BM25 document vectors and binary query vectors.

    ``avg_len`` is a constant rather than a running corpus average: stored vectors
    are never recomputed when the corpus changes, so a moving average would make old
    and new documents inconsistently normalized.
    """

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        avg_len: float = 256.0,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0 or avg_len <= 0:
            raise ValueError("need k1 >= 0, 0 <= b <= 1 and avg_len > 0")
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len
        self.tokenizer = tokenizer or Tokenizer()

    def encode_document(self, text: str) -> SparseVec:
        tokens = self.tokenizer.tokenize(text)
        if not tokens:
            return SparseVec((), ())
        norm = self.k1 * (1.0 - self.b + self.b * len(tokens) / self.avg_len)
        weights: dict[int, float] = {}
        for token, tf in Counter(tokens).items():
            tid = term_id(token)
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1.0) / (tf + norm)
        return SparseVec.from_weights(weights)

    def encode_documents(self, texts: list[str]) -> list[SparseVec]:
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVec:
        return SparseVec.from_weights({term_id(t): 1.0 for t in self.tokenizer.tokenize(text)})
