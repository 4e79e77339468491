"""Real Postgres and Redis for tests: a fresh database and key prefix per use, removed afterwards."""
from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis

PG_HOST = os.environ.get("SUPPORTLAH_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SUPPORTLAH_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SUPPORTLAH_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("SUPPORTLAH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def fresh_postgres():
    """Yield the asyncpg SQLAlchemy URL of a brand-new empty database; drop it afterwards."""
    name = f"supportlah_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_redis_prefix():
    """Yield (redis_url, prefix); every key under the prefix is deleted afterwards."""
    prefix = f"sltest-{uuid.uuid4().hex[:10]}"
    try:
        yield REDIS_URL, prefix
    finally:
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
            keys += [key async for key in redis.scan_iter(match=f"arq:*{prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()
