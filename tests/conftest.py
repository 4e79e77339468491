"""Shared fixtures: a container per test in either mode, on real SQLite / Postgres / Redis."""
from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from tests.sample_business import SAMPLE_VOCABULARY_FILE
from tests.services import fresh_postgres, fresh_redis_prefix

os.environ.setdefault("PTB_TIMEDELTA", "1")
# Tests never read a developer's .env or SUPPORTLAH_* variables by accident.
for _key in [k for k in os.environ if k.startswith("SUPPORTLAH_") and not k.startswith("SUPPORTLAH_TEST_")]:
    del os.environ[_key]
# With the `voice` extra installed every container assembles the Whisper model (145 MB) into its models
# dir at start; one dir for the whole run (and the next) instead of one per test's data dir.
# A held conversation's retry is only a safety net (the holder answers the message); tests do not
# wait out production's 30 s for it.
os.environ["SUPPORTLAH_CONVERSATION_BUSY_RETRY_SECONDS"] = "1"
os.environ["SUPPORTLAH_STT_MODEL_DIR"] = str(Path(tempfile.gettempdir()) / "supportlah-test-models")

BACKENDS = ["embedded", "production"]


@dataclass
class Backend:
    name: str
    settings_kwargs: dict

    def settings(self, **overrides: object) -> Settings:
        return load_settings(_env_file=None, **{**self.settings_kwargs, **overrides})


@pytest.fixture(params=BACKENDS)
async def backend(request, tmp_path: Path) -> AsyncIterator[Backend]:
    """Embedded: SQLite + in-process queue. Production: a fresh Postgres database + Redis prefix + arq."""
    async with AsyncExitStack() as stack:
        # The sample knowledge base's tests speak its business's words (its vocabulary file).
        kwargs: dict = {"data_dir": tmp_path / "data", "vocabulary_file": SAMPLE_VOCABULARY_FILE}
        if request.param == "production":
            kwargs["database_url"] = await stack.enter_async_context(fresh_postgres())
            redis_url, prefix = await stack.enter_async_context(fresh_redis_prefix())
            kwargs.update(redis_url=redis_url, redis_prefix=prefix)
        yield Backend(request.param, kwargs)
