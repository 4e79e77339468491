"""Personal data under Singapore's PDPA: consent records, access (export) and erasure.

Everything we hold about a customer hangs off their ``contacts`` row, so a contact id
is enough to find it, export it or erase it. Data kept outside SQL (attachment files,
short-term memory in Redis, tickets, vectors) is reached through
:class:`PersonalDataHolder` objects handed to :class:`PersonalData`, so a new feature
that stores customer data plugs into export and erasure by adding one holder.

Erasure takes the conversation lock the workers take, so it never interleaves with
a job answering the same customer: a job in flight finishes first, and a job still
queued finds its message gone and does nothing. Messages, replies, consents and
requests are deleted; the ``contacts`` and ``conversations`` rows stay as anonymous
shells (no channel id, no name) so that anonymized tickets keep their references, and
the retention purge removes the shells later. An ``erasures`` row (ids and counts
only) records that and when it happened.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum, nonmember
from pathlib import Path
from typing import Protocol

from sqlalchemy import JSON, ForeignKey, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from channels.messages import new_id, utcnow
from config.sql import Base, UTCDateTime, single_statement_sessions
from memory.models import Contact, Conversation, ConversationMode, Feedback, InboundMessageRow, OutboundPart, ReplyRow

log = logging.getLogger(__name__)


ERASED_PREFIX = "erased:"


def is_erased(channel_user_id: str) -> bool:
    return channel_user_id.startswith(ERASED_PREFIX)


# ---------------------------------------------------------------------- tables

class ErasureLocks(Protocol):
    """The processor's per-conversation lock (``workers.queue``), as erasure needs it: a contact is
    erased only while none of their conversations is being answered."""

    async def acquire(self, conversation_id: str) -> str | None: ...

    async def release(self, conversation_id: str, token: str) -> None: ...


class ConsentStatus(StrEnum):
    NOTIFIED = "notified"  # notice mode: the notice was shown; continuing implies consent
    PENDING = "pending"  # opt-in mode: asked, no answer yet
    AGREED = "agreed"
    DECLINED = "declined"
    GIVES_CONSENT = nonmember((NOTIFIED, AGREED))


class ConsentRecord(Base):
    """One notice shown or one answer given, with the notice version it was about."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))  # notice | opt-in
    notice_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str | None] = mapped_column(String(32))  # the inbound message that triggered it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataRequestRow(Base):
    """A customer's access or erasure request, from asking to done."""

    __tablename__ = "data_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | erasure
    status: Mapped[str] = mapped_column(String(24))  # awaiting_confirmation | confirmed | done | cancelled
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ErasureRow(Base):
    """Proof that a contact was erased: ids and counts only, never personal data."""

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(String(32), index=True)  # random id; meaningless once the contact is gone
    channel: Mapped[str] = mapped_column(String(16))
    requested_via: Mapped[str] = mapped_column(String(16))  # customer | admin
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---------------------------------------------------------------------- extension seams
@dataclass(frozen=True)
class ContactRef:
    """Who to export or erase, with what other stores need to find their share."""

    contact_id: str
    channel: str
    channel_user_id: str
    conversation_ids: tuple[str, ...]
    attachment_urls: tuple[str, ...] = ()


class PersonalDataHolder(Protocol):
    """A store of customer data outside the conversation tables (memory, tickets, files, vectors)."""

    name: str

    async def export_contact(self, contact: ContactRef) -> object:
        """JSON-serializable data held about the contact."""

    async def erase_contact(self, contact: ContactRef) -> int:
        """Remove (or anonymize) the contact's data; returns how many items were affected."""


class ErasureBusy(Exception):
    """The customer's conversation stayed locked by a worker longer than we were willing to wait."""


@dataclass(frozen=True)
class ErasureReport:
    contact_id: str
    erased_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- attachments
class MediaFiles:
    """Attachment files under the media folder (``data_dir/media``) that a contact's messages point at.

    Only paths inside the media folder are ever deleted, whatever a stored URL says.
    """

    name = "attachments"

    def __init__(self, media_dir: Path) -> None:
        self._root = media_dir.resolve()

    def owned_paths(self, urls: Sequence[str]) -> list[Path]:
        paths = []
        for url in urls:
            if not url or "://" in url or url.startswith(("tg-file:", "geo:", "tel:")):
                continue
            path = Path(url.removeprefix("file:")).resolve()
            if path.is_relative_to(self._root):
                paths.append(path)
        return paths

    async def export_contact(self, contact: ContactRef) -> object:
        def describe() -> list[dict]:
            return [{"file": p.name, "bytes": p.stat().st_size} for p in self.owned_paths(contact.attachment_urls)
                    if p.is_file()]

        return await asyncio.to_thread(describe)

    async def erase_contact(self, contact: ContactRef) -> int:
        def remove() -> int:
            removed = 0
            for path in self.owned_paths(contact.attachment_urls):
                if path.is_file():
                    path.unlink()
                    removed += 1
            return removed

        return await asyncio.to_thread(remove)

    async def purge_before(self, cutoff: datetime) -> int:
        """Retention: every file in the media folder last written before ``cutoff``."""

        def remove() -> int:
            if not self._root.is_dir():
                return 0
            limit = cutoff.timestamp()
            removed = 0
            for path in self._root.rglob("*"):
                if path.is_file() and path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            return removed

        return await asyncio.to_thread(remove)


# ---------------------------------------------------------------------- access and erasure
class PersonalData:
    """Find, export and erase one customer's data, and track their PDPA requests."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        locks: ErasureLocks,
        *,
        holders: Sequence[PersonalDataHolder] = (),
        lock_wait_seconds: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT
        self._locks = locks
        self._holders = list(holders)
        self._lock_wait = lock_wait_seconds
        self._background: set[asyncio.Task] = set()

    def add_holder(self, holder: PersonalDataHolder) -> None:
        self._holders.append(holder)

    @property
    def holders(self) -> list[PersonalDataHolder]:
        return list(self._holders)

    # --- lookup -------------------------------------------------------------
    async def contact(self, contact_id: str) -> ContactRef | None:
        """The contact, or None if unknown or already erased."""
        async with self._sessions() as session:
            row = await session.get(Contact, contact_id)
            if row is None or is_erased(row.channel_user_id):
                return None
            conversations = (await session.scalars(
                select(Conversation.id).where(Conversation.contact_id == contact_id).order_by(Conversation.created_at)
            )).all()
            attachments = (await session.scalars(
                select(InboundMessageRow.attachments).where(InboundMessageRow.contact_id == contact_id)
            )).all()
        urls = tuple(a.get("url") or "" for items in attachments for a in items or [] if isinstance(a, dict))
        return ContactRef(row.id, row.channel, row.channel_user_id, tuple(conversations), urls)

    async def find_contact(self, channel: str, channel_user_id: str) -> ContactRef | None:
        async with self._sessions() as session:
            contact_id = await session.scalar(
                select(Contact.id).where(Contact.channel == channel, Contact.channel_user_id == channel_user_id)
            )
        return await self.contact(contact_id) if contact_id else None

    # --- access -------------------------------------------------------------
    async def export(self, contact_id: str) -> dict | None:
        """Everything held about the contact as one JSON-serializable document (None: unknown contact)."""
        ref = await self.contact(contact_id)
        if ref is None:
            return None
        async with self._sessions() as session:
            contact = await session.get(Contact, contact_id)
            assert contact is not None
            consents = (await session.scalars(
                select(ConsentRecord).where(ConsentRecord.contact_id == contact_id).order_by(ConsentRecord.created_at)
            )).all()
            requests = (await session.scalars(
                select(DataRequestRow).where(DataRequestRow.contact_id == contact_id)
                .order_by(DataRequestRow.created_at)
            )).all()
            conversations = []
            for conversation_id in ref.conversation_ids:
                conversations.append(await _conversation_export(session, conversation_id))
        document: dict = {
            "exported_at": utcnow().isoformat(),
            "contact": {
                "id": contact.id, "channel": contact.channel, "channel_user_id": contact.channel_user_id,
                "display_name": contact.display_name, "language": contact.language,
                "created_at": _iso(contact.created_at), "last_message_at": _iso(contact.last_inbound_at),
            },
            "consents": [{"status": c.status, "mode": c.mode, "notice_version": c.notice_version,
                          "channel": c.channel, "language": c.language, "at": _iso(c.created_at)} for c in consents],
            "requests": [{"kind": r.kind, "status": r.status, "at": _iso(r.created_at)} for r in requests],
            "conversations": conversations,
        }
        for holder in self._holders:
            document[holder.name] = await holder.export_contact(ref)
        return document

    # --- erasure ------------------------------------------------------------
    async def erase(self, contact_id: str, *, requested_via: str) -> ErasureReport | None:
        """Erase the contact everywhere; None if there is no such contact (already erased).

        Holders go first and SQL last: if a holder fails, the contact row still exists and
        the erasure can simply be run again.
        """
        ref = await self.contact(contact_id)
        if ref is None:
            return None
        tokens = await self._lock_all(ref.conversation_ids)
        try:
            ref = await self.contact(contact_id) or ref  # messages may have arrived while we waited
            counts: dict[str, int] = {}
            for holder in self._holders:
                counts[holder.name] = await holder.erase_contact(ref)
            counts.update(await self._erase_rows(ref, requested_via))
        finally:
            for conversation_id, token in tokens:
                await self._locks.release(conversation_id, token)
        log.info("contact erased", extra={"contact_id": contact_id, "requested_via": requested_via, **counts})
        return ErasureReport(contact_id=contact_id, erased_at=utcnow(), counts=counts)

    async def _lock_all(self, conversation_ids: Sequence[str]) -> list[tuple[str, str]]:
        deadline = asyncio.get_running_loop().time() + self._lock_wait
        held: list[tuple[str, str]] = []
        try:
            for conversation_id in conversation_ids:
                while (token := await self._locks.acquire(conversation_id)) is None:
                    if asyncio.get_running_loop().time() > deadline:
                        raise ErasureBusy(f"conversation {conversation_id} stayed busy for {self._lock_wait:.0f} s")
                    await asyncio.sleep(0.1)
                held.append((conversation_id, token))
        except BaseException:
            for conversation_id, token in held:
                await self._locks.release(conversation_id, token)
            raise
        return held

    async def _erase_rows(self, ref: ContactRef, requested_via: str) -> dict[str, int]:
        conversations = list(ref.conversation_ids)
        async with self._sessions() as session, session.begin():
            counts = {
                "feedback": await _delete(session, Feedback, Feedback.conversation_id.in_(conversations)),
                "outbound_messages": await _delete(session, OutboundPart,
                                                   OutboundPart.conversation_id.in_(conversations)),
                "replies": await _delete(session, ReplyRow, ReplyRow.conversation_id.in_(conversations)),
                "inbound_messages": await _delete(session, InboundMessageRow,
                                                  InboundMessageRow.contact_id == ref.contact_id),
                "consents": await _delete(session, ConsentRecord, ConsentRecord.contact_id == ref.contact_id),
                "data_requests": await _delete(session, DataRequestRow, DataRequestRow.contact_id == ref.contact_id),
            }
            await session.execute(
                update(Conversation).where(Conversation.contact_id == ref.contact_id)
                .values(mode=ConversationMode.BOT, language=None, context_reset_at=None)
            )
            # The shell keeps the row (tickets point at it) but nothing that identifies anyone; the next
            # message from the same person starts a new contact. Retention removes the shell later.
            await session.execute(
                update(Contact).where(Contact.id == ref.contact_id)
                .values(channel_user_id=f"{ERASED_PREFIX}{ref.contact_id}", display_name=None, language=None,
                        unreachable=True, last_inbound_at=utcnow())
            )
            counts["contacts"] = 1
            session.add(ErasureRow(contact_id=ref.contact_id, channel=ref.channel, requested_via=requested_via,
                                   counts=counts, erased_at=utcnow()))
        return counts

    # --- customer requests --------------------------------------------------
    async def open_request(self, contact_id: str, kind: str, channel: str, *, status: str) -> str:
        async with self._sessions() as session, session.begin():
            row = DataRequestRow(contact_id=contact_id, kind=kind, status=status, channel=channel,
                                 created_at=utcnow(), updated_at=utcnow())
            session.add(row)
        return row.id

    async def awaiting_confirmation(self, contact_id: str, within: timedelta) -> str | None:
        """The contact's erasure request still waiting for a "yes", if asked recently."""
        async with self._reads() as session:
            return await session.scalar(
                select(DataRequestRow.id)
                .where(DataRequestRow.contact_id == contact_id, DataRequestRow.kind == "erasure",
                       DataRequestRow.status == "awaiting_confirmation",
                       DataRequestRow.created_at >= utcnow() - within)
                .order_by(DataRequestRow.created_at.desc())
                .limit(1)
            )

    async def set_request_status(self, request_id: str, status: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(DataRequestRow).where(DataRequestRow.id == request_id)
                .values(status=status, updated_at=utcnow())
            )

    async def confirmed_erasures(self) -> list[str]:
        """Contacts who confirmed an erasure that has not run yet (a worker died, or it is queued)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DataRequestRow.contact_id).where(DataRequestRow.kind == "erasure",
                                                        DataRequestRow.status == "confirmed").distinct()
            )
            return list(rows)

    async def run_confirmed_erasures(self) -> int:
        """Backstop for :meth:`erase_soon`: erase every confirmed request still outstanding."""
        done = 0
        for contact_id in await self.confirmed_erasures():
            try:
                if await self.erase(contact_id, requested_via="customer") is not None:
                    done += 1
            except ErasureBusy:
                log.warning("erasure postponed: conversation busy", extra={"contact_id": contact_id})
        return done

    def erase_soon(self, contact_id: str) -> None:
        """Erase once the current job lets go of the conversation (called from inside that job).

        The confirmed request row is the durable record; if this process dies first,
        :meth:`run_confirmed_erasures` (run by the retention cron) finishes the work.
        """
        task = asyncio.get_running_loop().create_task(self._erase_logged(contact_id), name="pdpa-erasure")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _erase_logged(self, contact_id: str) -> None:
        try:
            await self.erase(contact_id, requested_via="customer")
        except Exception:
            log.exception("customer erasure failed; the retention cron will retry", extra={"contact_id": contact_id})

    async def wait_background(self, timeout: float | None = None) -> None:
        """Wait for erasures started by :meth:`erase_soon` (shutdown and tests)."""
        if self._background:
            await asyncio.wait_for(asyncio.gather(*list(self._background), return_exceptions=True), timeout)

    async def close(self) -> None:
        await self.wait_background(timeout=self._lock_wait + 5)


async def _delete(session: AsyncSession, model: type, condition) -> int:  # noqa: ANN001
    result = await session.execute(delete(model).where(condition))
    return int(result.rowcount or 0)


async def _conversation_export(session: AsyncSession, conversation_id: str) -> dict:
    conversation = await session.get(Conversation, conversation_id)
    assert conversation is not None
    inbound = (await session.execute(
        select(InboundMessageRow.id, InboundMessageRow.text, InboundMessageRow.received_at,
               InboundMessageRow.attachments)
        .where(InboundMessageRow.conversation_id == conversation_id)
    )).all()
    outbound = (await session.execute(
        select(OutboundPart.role, OutboundPart.text, OutboundPart.created_at, OutboundPart.inbound_message_id,
               OutboundPart.part_index)
        .where(OutboundPart.conversation_id == conversation_id)
    )).all()
    feedback = (await session.execute(
        select(Feedback.inbound_message_id, Feedback.helpful, Feedback.created_at)
        .where(Feedback.conversation_id == conversation_id)
    )).all()
    ordered = [
        ((at, 0, 0), {"from": "customer", "text": text, "at": _iso(at), "message_id": mid,
                      "attachments": [{k: a.get(k) for k in ("kind", "mime_type", "size", "name")}
                                      for a in attachments or []]})
        for mid, text, at, attachments in inbound
    ]
    ordered += [((at, 1, index), {"from": role, "text": text, "at": _iso(at), "in_reply_to": mid})
                for role, text, at, mid, index in outbound]
    messages = [message for _key, message in sorted(ordered, key=lambda item: item[0])]
    return {
        "id": conversation.id, "channel": conversation.channel, "language": conversation.language,
        "started_at": _iso(conversation.created_at), "messages": messages,
        "feedback": [{"message_id": mid, "helpful": helpful, "at": _iso(at)} for mid, helpful, at in feedback],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
