"""Admin API keys: random 32-byte tokens, stored only as their sha256, each with scopes.

A key is shown once, when it is created. What is stored cannot be turned back into
the key; the short prefix (``slk_`` and 8 characters) is enough for a person to tell
keys apart in ``supportlah admin list-keys`` and in the audit log.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import utcnow
from supportlah.admin.models import ApiKey

SCOPES: tuple[str, ...] = (
    "kb:read", "kb:write", "tickets:read", "tickets:write", "contacts:read", "contacts:erase", "analytics:read",
)
TOKEN_PREFIX = "slk_"
_SHOWN_CHARS = len(TOKEN_PREFIX) + 8
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # do not write on every request


class UnknownScope(ValueError):
    """A scope that does not exist was asked for."""


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    token: str  # the secret; never stored, shown once


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """``"kb:read kb:write"`` or a list (commas also separate); ``all`` means every scope."""
    parts = [raw] if isinstance(raw, str) else list(raw)
    items = [scope for part in parts for scope in part.replace(",", " ").split()]
    if "all" in items:
        return frozenset(SCOPES)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope(s) {', '.join(unknown)}; choose from {' '.join(SCOPES)}")
    if not items:
        raise UnknownScope(f"give at least one scope: {' '.join(SCOPES)}")
    return frozenset(items)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, frozenset(row.scopes.split()), row.created_at,
                   row.last_used_at, row.revoked_at)


class ApiKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, name: str, scopes: frozenset[str]) -> NewKey:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(name=name[:100], prefix=token[:_SHOWN_CHARS], token_sha256=hash_token(token),
                     scopes=" ".join(sorted(scopes)), created_at=utcnow())
        async with self._sessions() as session, session.begin():
            session.add(row)
        return NewKey(_info(row), token)

    async def revoke(self, key: str) -> KeyInfo | None:
        """Revoke by id or by prefix (as listed); None if nothing matched."""
        async with self._sessions() as session, session.begin():
            row = await session.scalar(select(ApiKey).where((ApiKey.id == key) | (ApiKey.prefix == key)))
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _info(row)

    async def list(self) -> list[KeyInfo]:
        async with self._sessions() as session:
            return [_info(r) for r in await session.scalars(select(ApiKey).order_by(ApiKey.created_at))]

    async def authenticate(self, token: str) -> KeyInfo | None:
        """The live key this token belongs to, or None (unknown, malformed or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = hash_token(token)
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.token_sha256 == digest))
            if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_sha256, digest):
                return None
            info = _info(row)
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
                await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
                await session.commit()
        return info
