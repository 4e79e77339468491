"""Run Alembic migrations from code (``supportlah migrate`` and embedded auto-migrate), and the start-up
check every command makes: kept apart from the container so commands that only read the database
(``kb list``, ``tickets``, ``admin``) start without loading models or SDKs."""
from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from config.sql import create_engine
from supportlah.schema import metadata

if TYPE_CHECKING:
    from config.settings import Settings


class StartupError(Exception):
    """The app cannot start with this configuration; the message says why."""


async def prepare_database(settings: Settings) -> None:
    """Embedded mode migrates itself; production refuses to run on an unmigrated database."""
    url = settings.sqlalchemy_url
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Reading the revision is a tenth of what running Alembic's upgrade costs when nothing is to do,
        # and every command starts here.
        if not settings.embedded_database_path.exists() or await current_revision(url) != head_revision(url):
            await upgrade(url)
        return
    current = await current_revision(url)
    head = head_revision(url)
    if current != head:
        raise StartupError(
            f"the database is at revision {current or 'none'} but the code needs {head}: run `supportlah migrate`"
        )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(str(resources.files("migrations")))))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["target_metadata"] = metadata  # env.py compares the schema against it
    return config


def upgrade_to_head(url: str) -> None:
    """Blocking: run from a thread or before the loop starts (env.py runs its own loop)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade(url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, url)


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
