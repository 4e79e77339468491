"""Whose data dir this is: your business (``supportlah init``) or the demo's sample business.

A data dir carries its own settings in ``business.env`` (``config.paths.PROFILE_FILE``): the
business name, its languages, the chat's example questions. Its first line says which kind of data
dir it is, so the demo never ingests the sample into a business's data dir and ``ingest`` never
adds a business's documents to the demo's.
"""
from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path

from config.paths import PROFILE_FILE

SAMPLE_BUSINESS_NAME = "ChillPro Aircon & Home Services"
DEMO_DATA_DIR = Path(".supportlah-demo")
_KIND_PREFIX = "# supportlah data dir: "


class DataDirKind(StrEnum):
    BUSINESS = "business"
    DEMO = "demo"


def sample_kb_path() -> Path:
    return Path(str(resources.files("supportlah") / "sample_kb"))


@cache
def sample_hashes() -> frozenset[str]:
    """sha256 of every sample document, as the catalog records them."""
    from rag.hashing import file_sha256

    return frozenset(file_sha256(p.read_bytes()) for p in sample_kb_path().iterdir() if p.is_file())


def profile_kind(data_dir: Path) -> DataDirKind | None:
    path = data_dir / PROFILE_FILE
    if not path.is_file():
        return None
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if first.startswith(_KIND_PREFIX):
        try:
            return DataDirKind(first.removeprefix(_KIND_PREFIX).strip())
        except ValueError:
            pass
    return DataDirKind.BUSINESS  # a hand-written profile is somebody's business


def _env_value(value: str | list[str]) -> str:
    """A dotenv value: lists as JSON (questions may hold commas), strings double-quoted and escaped."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
    if "\n" in text or "\r" in text:
        raise ValueError("profile values are one line each")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_profile(data_dir: Path, kind: DataDirKind, values: dict[str, str | list[str]]) -> Path:
    """Write ``business.env``; ``values`` are setting names without the prefix (``business_name``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{_KIND_PREFIX}{kind}",
        "# Settings of this data dir, written by `supportlah init`. Edit freely; SUPPORTLAH_* variables",
        "# in the environment or a .env file override what is here.",
    ]
    path = data_dir / PROFILE_FILE
    written = {f"SUPPORTLAH_{name.upper()}" for name in values}
    if path.is_file():  # settings the owner added by hand stay (init --force rewrites only its own)
        lines += [line for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.startswith("#") and line.split("=", 1)[0].strip() not in written]
    lines += [f"SUPPORTLAH_{name.upper()}={_env_value(value)}" for name, value in values.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
