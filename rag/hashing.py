"""Content identities used to skip work that was already done."""
from __future__ import annotations

import hashlib


def content_hash(text: str) -> str:
    """A chunk's identity: equal text means its stored embedding can be reused."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(data: bytes) -> str:
    """A file's identity: an unchanged file is skipped on re-ingestion."""
    return hashlib.sha256(data).hexdigest()
