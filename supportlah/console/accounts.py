"""Console accounts: scrypt password hashes, sign-in sessions with a CSRF token, one-time links.

Nothing secret is stored in clear: passwords as ``scrypt$n$r$p$salt$hash`` (stdlib
``hashlib.scrypt``), session cookies and set-password links as the sha256 of their
random token. Hashing is CPU work, so it runs in a thread.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import new_id, utcnow
from supportlah.console.models import ConsoleSession, ConsoleUser, Role

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MB and tens of milliseconds per hash
MIN_PASSWORD = 10
SET_PASSWORD_VALID = timedelta(hours=48)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")


class AccountError(ValueError):
    """A refused account change (bad e-mail, short password, existing account); the message says why."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time comparison; an account without a password (link not used yet) never matches."""
    if not stored:
        hashlib.scrypt(b"x", salt=b"0" * 16, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)  # same cost either way
        return False
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(computed, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: Role

    @property
    def actor_id(self) -> str:
        """The staff-message ``user_id`` of this person (ticket assignee, audit actor)."""
        return f"console:{self.id}"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


@dataclass(frozen=True)
class SignedIn:
    user: User
    csrf_token: str


def _user(row: ConsoleUser) -> User:
    return User(id=row.id, email=row.email, name=row.display_name, role=Role(row.role))


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")


class Accounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, session_hours: int = 12) -> None:
        self._sessions = sessions
        self._session_length = timedelta(hours=session_hours)

    async def add_user(self, email: str, role: Role, *, password: str | None = None,
                       name: str | None = None) -> tuple[User, str | None]:
        """Create an account. Without ``password`` a one-time set-password token is returned (show it once)."""
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise AccountError(f"{email!r} is not an e-mail address")
        link_token = None
        password_hash = None
        if password is not None:
            check_password_rules(password)
            password_hash = await asyncio.to_thread(hash_password, password)
        else:
            link_token = secrets.token_urlsafe(32)
        row = ConsoleUser(id=new_id()[:16], email=email, display_name=(name or email.split("@")[0])[:100],
                          role=Role(role).value, password_hash=password_hash,
                          set_password_sha256=_sha256(link_token) if link_token else None,
                          set_password_expires_at=utcnow() + SET_PASSWORD_VALID if link_token else None)
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise AccountError(f"an account for {email} exists already") from exc
        return _user(row), link_token

    async def new_link(self, email: str) -> str:
        """A fresh one-time set-password link for an existing account (a forgotten password); the old
        password keeps working until the link is used."""
        token = secrets.token_urlsafe(32)
        async with self._sessions() as session, session.begin():
            changed = await session.execute(
                update(ConsoleUser).where(ConsoleUser.email == email.strip().lower())
                .values(set_password_sha256=_sha256(token), set_password_expires_at=utcnow() + SET_PASSWORD_VALID))
        if changed.rowcount != 1:
            raise AccountError(f"no account for {email}")
        return token

    async def count(self) -> int:
        async with self._sessions() as session:
            return await session.scalar(select(func.count()).select_from(ConsoleUser)) or 0

    async def list(self) -> list[User]:
        async with self._sessions() as session:
            return [_user(row) for row in await session.scalars(select(ConsoleUser).order_by(ConsoleUser.email))]

    async def user_for_link(self, token: str) -> User | None:
        row = await self._link_row(token)
        return _user(row) if row is not None else None

    async def _link_row(self, token: str) -> ConsoleUser | None:
        if not token:
            return None
        async with self._sessions() as session:
            row = await session.scalar(select(ConsoleUser).where(ConsoleUser.set_password_sha256 == _sha256(token)))
        if row is None or row.set_password_expires_at is None or row.set_password_expires_at < utcnow():
            return None
        return row

    async def set_password_with_link(self, token: str, password: str) -> User:
        """Use the one-time link: set the password, and the link stops working."""
        check_password_rules(password)
        row = await self._link_row(token)
        if row is None:
            raise AccountError("this link is unknown, used already or expired: ask for a new one")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._sessions() as session, session.begin():
            changed = await session.execute(
                update(ConsoleUser).where(ConsoleUser.id == row.id, ConsoleUser.set_password_sha256 == _sha256(token))
                .values(password_hash=password_hash, set_password_sha256=None, set_password_expires_at=None))
            if changed.rowcount != 1:
                raise AccountError("this link was used already")
            await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))
        return _user(row)

    async def authenticate(self, email: str, password: str) -> User | None:
        async with self._sessions() as session:
            row = await session.scalar(select(ConsoleUser).where(ConsoleUser.email == email.strip().lower()))
        stored = row.password_hash if row is not None and row.disabled_at is None else None
        if not await asyncio.to_thread(verify_password, password, stored):
            return None
        assert row is not None
        return _user(row)

    async def start_session(self, user: User) -> tuple[str, SignedIn]:
        """A new session: the cookie token (only its hash is kept) and the session's CSRF token."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._sessions() as session, session.begin():
            await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            session.add(ConsoleSession(token_sha256=_sha256(token), user_id=user.id, csrf_token=csrf,
                                       created_at=now, expires_at=now + self._session_length))
        return token, SignedIn(user, csrf)

    async def session(self, token: str) -> SignedIn | None:
        if not token:
            return None
        async with self._sessions() as session:
            found = (await session.execute(
                select(ConsoleSession, ConsoleUser).join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
                .where(ConsoleSession.token_sha256 == _sha256(token))
            )).first()
        if found is None:
            return None
        row, user = found
        if row.expires_at < utcnow() or user.disabled_at is not None:
            return None
        return SignedIn(_user(user), row.csrf_token)

    async def end_session(self, token: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == _sha256(token)))



class StaffedConsole:
    """``escalation.hook.OtherDesk``: the console is a desk once it has an account. Once true it stays
    true for the process (accounts are not deleted), so the check costs a query only until then."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._staffed = False

    async def staffed(self) -> bool:
        if not self._staffed:
            async with self._sessions() as session:
                self._staffed = await session.scalar(select(ConsoleUser.id).limit(1)) is not None
        return self._staffed
