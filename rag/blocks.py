"""The unit loaders produce and the chunker consumes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["paragraph", "table_row", "heading"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str
    heading_path: tuple[str, ...] = ()  # for a heading block, the path including itself
    page: int | None = None  # 1-based page number (PDF only)
