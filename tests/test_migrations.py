"""The Alembic migrations and the models agree, on SQLite and on Postgres; migrate is idempotent."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from config.sql import create_engine
from supportlah import migrate
from supportlah.schema import metadata
from tests.services import fresh_postgres


async def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
    else:
        async with fresh_postgres() as url:
            yield url


async def test_migrations_match_the_models(empty_database):
    await migrate.upgrade(empty_database)
    assert await _diff(empty_database) == [], "models and migrations disagree: write a migration"


async def test_migrate_twice_is_a_no_op(empty_database):
    await migrate.upgrade(empty_database)
    first = await migrate.current_revision(empty_database)
    await migrate.upgrade(empty_database)
    assert await migrate.current_revision(empty_database) == first == migrate.head_revision(empty_database)


async def test_cli_migrate_then_serve_on_empty_postgres(tmp_path: Path):
    async with fresh_postgres() as url:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")},
               "SUPPORTLAH_DATABASE_URL": url, "SUPPORTLAH_DATA_DIR": str(tmp_path / "data")}
        cli = [sys.executable, "-m", "supportlah.cli"]
        first = subprocess.run([*cli, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        second = subprocess.run([*cli, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0 and first.stdout == second.stdout
        # serve refuses an unmigrated database with a clear message, and starts on a migrated one
        async with fresh_postgres() as empty_url:
            refused = subprocess.run([*cli, "serve", "--port", "1"], env={**env, "SUPPORTLAH_DATABASE_URL": empty_url},
                                     capture_output=True, text=True, timeout=120)
            assert refused.returncode == 1 and "supportlah migrate" in refused.stderr
        from tests.harness import wait_http
        from tests.test_e2e_production import _free_port

        port = _free_port()
        server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            await wait_http(f"http://127.0.0.1:{port}/readyz")
        finally:
            server.terminate()
            server.wait(30)
