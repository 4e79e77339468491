"""The message store: every inbound message is committed here before it is acknowledged.

One class over SQLAlchemy async sessions, identical on SQLite and Postgres. It is
the system of record the workers consult to make processing idempotent: a
message already answered is never answered again, and a reply part already sent
is never sent again.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, delete, exists, func, select, union_all, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.types import Reply, Turn
from channels.base import AcceptResult
from channels.messages import Attachment, Channel, InboundMessage, OutboundMessage, StoredInbound, new_id, utcnow
from config.sql import autocommit_connections, dialect_insert, single_statement_sessions
from memory.inbound import record_inbound_batch
from memory.models import (
    ChatMigration,
    Contact,
    Conversation,
    ConversationMode,
    EarlyDeliveryStatus,
    Feedback,
    InboundMessageRow,
    InboundStatus,
    OutboundPart,
    PartState,
    ReplyRow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusChange:
    """A delivery report applied to a known part; ``failed_now`` when it turned a sent part failed."""

    part: OutboundPart
    failed_now: bool


# Provider states in the order a message goes through them; a report never moves a part backwards.
_STATUS_ORDER = {PartState.PENDING: 0, PartState.SENDING: 1, "queued": 1, "accepted": 1, PartState.SENT: 2,
                 PartState.DELIVERED: 3, PartState.READ: 4, PartState.FAILED: 5, "undelivered": 5,
                 PartState.REPLACED: 6}


@dataclass(frozen=True)
class StoredMessage:
    message: StoredInbound
    contact_id: str
    status: InboundStatus
    attempts: int
    conversation_mode: ConversationMode
    conversation_language: str | None


@dataclass(frozen=True)
class PendingMessage:
    """A message of a conversation not yet done: enough to start its query embedding early."""

    id: str
    text: str


@dataclass(frozen=True)
class ConversationWork:
    """What a job needs before it takes the conversation lock, read in one statement."""

    conversation_id: str
    done: bool  # the job's own message is answered, escalated or failed already
    text: str  # the job's own message's text
    pending: list[PendingMessage]  # the conversation's unfinished messages, oldest first


@dataclass(frozen=True)
class Attempt:
    """One attempt at a message: its number, the message as it is now, and the decision recorded
    by an earlier attempt, if any (a retry reuses it instead of asking the agent again)."""

    number: int
    stored: StoredMessage
    reply: ReplyRow | None


_INBOUND = InboundMessageRow.__table__
_CONVERSATIONS = Conversation.__table__
_CONTACTS = Contact.__table__
_REPLIES = ReplyRow.__table__
_PARTS = OutboundPart.__table__
_EARLY = EarlyDeliveryStatus.__table__
_PENDING_ORDER = (_INBOUND.c.received_at, _INBOUND.c.id)
_PART_ATTRIBUTES = {column.name: OutboundPart.__mapper__.get_property_by_column(column).key for column in _PARTS.c}


def _stored_from_row(row) -> StoredMessage:  # noqa: ANN001 - a Row mapping with the inbound columns + three
    """A StoredMessage from a row of the inbound columns plus ``mode``, ``language`` and ``display_name``."""
    msg = StoredInbound(
        id=row["id"],
        channel=Channel(row["channel"]),
        provider_message_id=row["provider_message_id"],
        sender_id=row["sender_id"],
        sender_name=row["display_name"],
        conversation_id=row["conversation_id"],
        text=row["text"],
        attachments=[Attachment.model_validate(a) for a in row["attachments"] or []],
        received_at=row["received_at"],
        reply_to=row["reply_to"],
        metadata=dict(row["metadata"] or {}),
    )
    return StoredMessage(
        message=msg,
        contact_id=row["contact_id"],
        status=InboundStatus(row["status"]),
        attempts=row["attempts"],
        conversation_mode=ConversationMode(row["mode"] or ConversationMode.BOT),
        conversation_language=row["language"],
    )


_REPLY_COLUMNS = [c for c in _REPLIES.c if c.name != "conversation_id"]
_REPLY_LABEL = "reply_"


def _reply_from_row(row) -> ReplyRow | None:  # noqa: ANN001
    if row[_REPLY_LABEL + "id"] is None:
        return None
    values = {c.key: row[_REPLY_LABEL + c.name] for c in _REPLY_COLUMNS}
    return ReplyRow(**values, conversation_id=row["conversation_id"])


class MessageStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._one_statement = single_statement_sessions(sessions)  # no BEGIN/COMMIT round trips
        self._connect = autocommit_connections(sessions)  # and no session either, for plain Core statements
        # Postgres runs several writes as one statement (data-modifying CTEs); SQLite gets them one by one.
        self._postgres = sessions.kw["bind"].dialect.name == "postgresql"

    # ---------------------------------------------------------------- inbound
    async def record_inbound(self, msg: InboundMessage) -> AcceptResult:
        """Store a new inbound message; a repeat of (channel, provider id) is reported as duplicate."""
        return (await self.record_inbound_many([msg]))[0]

    async def record_inbound_many(self, messages: Sequence[InboundMessage]) -> list[AcceptResult]:
        """Store several inbound messages in one transaction (see :mod:`memory.inbound`).

        A connection the database dropped (restart, failover, idle timeout) is retried once on a
        fresh one: the webhook must not fail for it, and a provider may never redeliver. Should the
        lost transaction have committed after all, the retry reports its messages as duplicates;
        they are stored, and the recovery pass enqueues them.
        """
        for attempt in (1, 2):
            try:
                async with self._sessions() as session:
                    results = await record_inbound_batch(await session.connection(), messages)
                    await session.commit()
                return results
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("database connection dropped; storing the batch again on a fresh one",
                            extra={"messages": len(messages)})
        raise AssertionError("unreachable")

    async def load(self, message_id: str) -> StoredMessage | None:
        """The message with its conversation's mode/language and the sender's name, in one query."""
        async with self._connect() as connection:
            found = (await connection.execute(
                select(*_INBOUND.c, _CONVERSATIONS.c.mode, _CONVERSATIONS.c.language, _CONTACTS.c.display_name)
                .outerjoin(_CONVERSATIONS, _CONVERSATIONS.c.id == _INBOUND.c.conversation_id)
                .outerjoin(_CONTACTS, _CONTACTS.c.id == _INBOUND.c.contact_id)
                .where(_INBOUND.c.id == message_id)
            )).first()
        return None if found is None else _stored_from_row(found._mapping)

    async def update_attachments(self, message_id: str, attachments: list[Attachment]) -> None:
        async with self._one_statement() as session:
            await session.execute(
                update(InboundMessageRow)
                .where(InboundMessageRow.id == message_id)
                .values(attachments=[a.model_dump(mode="json") for a in attachments])
            )
            await session.commit()

    async def update_text(self, message_id: str, text: str, metadata: dict[str, str] | None = None) -> None:
        """Replace the text (a voice note's transcript; ``metadata`` is merged in, e.g. that it was
        transcribed); the original audio stays as an attachment."""
        async with (self._sessions() if metadata else self._one_statement()) as session:
            values: dict = {"text": text}
            if metadata:
                current = await session.scalar(select(InboundMessageRow.meta).where(InboundMessageRow.id == message_id))
                values["meta"] = {**(current or {}), **metadata}
            await session.execute(update(InboundMessageRow).where(InboundMessageRow.id == message_id).values(**values))
            await session.commit()

    async def unfinished_in_conversation(self, conversation_id: str) -> list[PendingMessage]:
        """This conversation's messages not yet done, oldest first (the processing order)."""
        async with self._connect() as connection:
            rows = await connection.execute(
                select(_INBOUND.c.id, _INBOUND.c.text)
                .where(_INBOUND.c.conversation_id == conversation_id, _INBOUND.c.status.not_in(InboundStatus.DONE))
                .order_by(*_PENDING_ORDER)
            )
            return [PendingMessage(id, text) for id, text in rows]

    async def conversation_work(self, message_id: str) -> ConversationWork | None:
        """The message's conversation, whether the message is done, and the conversation's unfinished
        messages, in one statement; None if the message is unknown. Read before the conversation lock
        is taken, so each message is re-checked when its attempt begins (:meth:`begin`)."""
        async with self._connect() as connection:
            rows = (await connection.execute(_conversation_work_query(), {"message_id": message_id})).all()
        mine = next((row for row in rows if row.id == message_id), None)
        if mine is None:
            return None
        return ConversationWork(
            conversation_id=mine.conversation_id, done=mine.status in InboundStatus.DONE, text=mine.text,
            pending=[PendingMessage(row.id, row.text) for row in rows if row.status not in InboundStatus.DONE])

    async def begin(self, message_id: str) -> Attempt | None:
        """Count one more attempt at a message not yet done (a queued message becomes processing) and
        read it, with its conversation, sender and any recorded reply; None when it is done already.

        On Postgres this is one statement (the UPDATE … RETURNING in a CTE, joined to the rest).
        """
        async with self._connect() as connection:
            if self._postgres:
                found = (await connection.execute(_begin_statement(), {"message_id": message_id})).first()
            else:  # SQLite has no UPDATE in a CTE: the same in two statements
                begun = await connection.execute(_begin_update().returning(_INBOUND.c.id), {"message_id": message_id})
                if begun.first() is None:
                    return None
                found = (await connection.execute(_read_attempt(), {"message_id": message_id})).first()
        if found is None:
            return None
        row = found._mapping
        stored = _stored_from_row(row)  # read after the count: its ``attempts`` are those before this one
        return Attempt(number=stored.attempts, stored=replace(stored, attempts=stored.attempts - 1),
                       reply=_reply_from_row(row))

    async def record_attempt_error(self, message_id: str, error: str) -> None:
        async with self._one_statement() as session:
            await session.execute(
                update(InboundMessageRow).where(InboundMessageRow.id == message_id).values(last_error=error[:2000])
            )
            await session.commit()

    async def unanswered(self, older_than: timedelta | None = None) -> list[tuple[str, str]]:
        """(message id, conversation id) of accepted messages not done, oldest first."""
        async with self._sessions() as session:
            query = select(InboundMessageRow.id, InboundMessageRow.conversation_id).where(
                InboundMessageRow.status.not_in(InboundStatus.DONE)
            )
            if older_than is not None:
                query = query.where(InboundMessageRow.received_at < utcnow() - older_than)
            rows = await session.execute(query.order_by(InboundMessageRow.received_at, InboundMessageRow.id))
            return [(r[0], r[1]) for r in rows]

    async def set_conversation_language(self, conversation_id: str, language: str) -> None:
        async with self._one_statement() as session:
            await session.execute(
                update(Conversation).where(Conversation.id == conversation_id).values(language=language)
            )
            await session.commit()

    # ---------------------------------------------------------------- replies
    async def get_reply(self, message_id: str) -> ReplyRow | None:
        async with self._one_statement() as session:
            return await session.scalar(select(ReplyRow).where(ReplyRow.inbound_message_id == message_id))

    async def save_reply(
        self, message_id: str, conversation_id: str, reply: Reply, parts: list[OutboundMessage]
    ) -> list[OutboundPart] | None:
        """Record the decision, its outbound parts and the conversation's language atomically; all the
        message's parts in sending order (a hook may have queued one before, e.g. a privacy notice), or
        None if a reply already existed (a racing attempt).

        On Postgres this is one statement: the reply's INSERT … ON CONFLICT DO NOTHING, and the
        parts' INSERT and the conversation's UPDATE only where that insert happened.
        The message stays unfinished until :meth:`finish`: a reply whose parts are not
        all sent still holds back later messages of the conversation.
        """
        now = utcnow()
        sources = [s.as_record() for s in reply.sources]
        reply_values = {"id": new_id(), "inbound_message_id": message_id, "conversation_id": conversation_id,
                        "text": reply.text, "language": reply.language, "confidence": reply.confidence,
                        "escalate": reply.escalate, "reason": reply.reason, "sources": sources,
                        "backend": dict(reply.backend), "created_at": now}
        rows = [self._part_row(part, index, role=part.metadata.get("role", "assistant"))
                for index, part in enumerate(parts)]
        for row in rows:
            row.attempts, row.created_at, row.updated_at = 0, now, now
        part_values = [{name: getattr(row, attribute) for name, attribute in _PART_ATTRIBUTES.items()} for row in rows]
        try:
            async with self._connect() as connection:
                if self._postgres:
                    values = {**{f"reply_{name}": value for name, value in reply_values.items()},
                              **{f"part{i}_{name}": value for i, part in enumerate(part_values)
                                 for name, value in part.items()}}
                    saved = (await connection.execute(_save_reply_statement(len(part_values)), values)).first()
                    if saved is None:
                        return None
                    if not saved.queued_before:  # the usual case: the parts are exactly those just written
                        return rows
                else:
                    async with connection.begin():
                        await connection.execute(_REPLIES.insert().values(**reply_values))
                        if part_values:
                            await connection.execute(_PARTS.insert(), part_values)
                        await connection.execute(update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == conversation_id)
                                                 .values(language=reply.language))
        except IntegrityError:
            return None
        return await self.parts_for(message_id)

    async def finish(self, message_id: str, status: str) -> None:
        """Mark the message done, unless a part was added meanwhile (a resend after a delivery
        report): then it stays ``processing`` and the job the report enqueued sends that part."""
        async with self._connect() as connection:
            await connection.execute(_finish_statement(), _finish_values(message_id, status))

    @staticmethod
    def _part_row(part: OutboundMessage, index: int, *, role: str) -> OutboundPart:
        return OutboundPart(
            id=part.id,
            idempotency_key=part.idempotency_key,
            conversation_id=part.conversation_id,
            inbound_message_id=part.in_reply_to,
            channel=part.channel.value,
            recipient_id=part.recipient_id,
            role=role,
            part_index=index,
            text=part.text,
            sources=[s.as_record() for s in part.sources],
            meta=dict(part.metadata),
            state=PartState.PENDING,
        )

    async def add_outbound(self, part: OutboundMessage, *, role: str) -> bool:
        """Queue a standalone outbound part (staff reply, system notice). False if its key exists."""
        async with self._sessions() as session:
            session.add(self._part_row(part, 0, role=role))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    # ---------------------------------------------------------------- outbound parts
    async def parts_for(self, message_id: str) -> list[OutboundPart]:
        async with self._one_statement() as session:
            rows = await session.scalars(
                select(OutboundPart)
                .where(OutboundPart.inbound_message_id == message_id)
                .order_by(OutboundPart.part_index)
            )
            return list(rows)

    async def get_part(self, part_id: str) -> OutboundPart | None:
        async with self._one_statement() as session:
            return await session.get(OutboundPart, part_id)

    async def mark_part(self, part_id: str, state: str, **values: object) -> None:
        """Set a part's state (and other columns, by column name) in one autocommitted UPDATE."""
        table = OutboundPart.__table__
        changes: dict[str, object] = {"state": state, "updated_at": utcnow(), **values}
        if state == PartState.SENDING:
            changes["attempts"] = table.c.attempts + 1
        if state == PartState.SENT:
            changes["sent_at"] = utcnow()
        async with self._connect() as connection:
            await connection.execute(update(table).where(table.c.id == part_id).values(**changes))

    async def mark_sent(self, part_id: str, provider_message_id: str, *,
                        finish: tuple[str, str] | None = None) -> list[tuple[str, str | None]]:
        """The provider accepted the part: record its id, and take the delivery reports that came for
        that id before it was recorded (oldest first; see :meth:`record_status`). With ``finish``
        (message id, status) the message is finished too (see :meth:`finish`): its last part is sent.
        One statement on Postgres, so the part's state and the message's never disagree after a crash."""
        values = {"part_id": part_id, "sent_provider_id": provider_message_id, "now": utcnow(),
                  **(_finish_values(*finish) if finish is not None else {})}
        async with self._connect() as connection:
            if self._postgres:
                rows = (await connection.execute(_mark_sent_statement(finish is not None), values)).all()
            else:
                async with connection.begin():
                    await connection.execute(_sent_update(), values)
                    rows = sorted((await connection.execute(_take_early(), values)).all(),
                                  key=lambda r: (r.received_at, r.id))
                    if finish is not None:
                        await connection.execute(_finish_statement(), values)
        return [(row.status, row.error_code) for row in rows]

    async def note_part_error(self, part_id: str, error_code: str, last_error: str) -> None:
        """Record why the last send of a part did not finish, leaving its state (and its clock) alone."""
        table = OutboundPart.__table__
        async with self._connect() as connection:
            await connection.execute(update(table).where(table.c.id == part_id)
                                     .values(error_code=error_code, last_error=last_error,
                                             updated_at=table.c.updated_at))

    async def provider_id_known(self, channel: Channel, provider_message_id: str) -> bool:
        async with self._one_statement() as session:
            found = await session.scalar(
                select(OutboundPart.id).where(
                    OutboundPart.channel == channel.value, OutboundPart.provider_message_id == provider_message_id
                )
            )
            return found is not None

    async def record_status(
        self, channel: Channel, provider_message_id: str, status: str, error_code: str | None
    ) -> StatusChange | None:
        """Apply a provider delivery report. Never moves a part backwards (delivered stays delivered).

        A report for a provider id no part carries yet is kept (the worker may not have committed
        the id Twilio gave it) and applied by :meth:`take_early_statuses` once it is recorded; None.
        """
        new_state = PartState.FAILED if status in ("failed", "undelivered") else status
        async with self._sessions() as session:
            part = await session.scalar(
                select(OutboundPart).where(
                    OutboundPart.channel == channel.value, OutboundPart.provider_message_id == provider_message_id
                ).with_for_update()
            )
            if part is None:
                session.add(EarlyDeliveryStatus(channel=channel.value, provider_message_id=provider_message_id,
                                                status=status[:16], error_code=error_code, received_at=utcnow()))
                await session.commit()
                # The worker may have recorded the id (and taken the kept reports) between the look-up
                # above and this insert: then nobody else will apply it, so apply it here.
                recorded = await session.scalar(select(OutboundPart.id).where(
                    OutboundPart.channel == channel.value, OutboundPart.provider_message_id == provider_message_id))
                if recorded is None:
                    return None
            if part is None:
                change = None
                for kept_status, kept_code in await self.take_early_statuses(channel, provider_message_id):
                    applied = await self.record_status(channel, provider_message_id, kept_status, kept_code)
                    if applied is not None and (change is None or applied.failed_now):
                        change = applied
                return change
            failed_now = False
            if _STATUS_ORDER.get(status, 0) >= _STATUS_ORDER.get(part.state, 0) and part.state != new_state:
                if new_state in (PartState.SENT, PartState.DELIVERED, PartState.READ, PartState.FAILED):
                    failed_now = new_state == PartState.FAILED
                    part.state = new_state
                if error_code:
                    part.error_code = error_code
                part.updated_at = utcnow()
            await session.commit()
            return StatusChange(part=part, failed_now=failed_now)

    async def take_early_statuses(self, channel: Channel, provider_message_id: str) -> list[tuple[str, str | None]]:
        """Reports that arrived for this provider id before it was recorded, oldest first; removed here."""
        table = EarlyDeliveryStatus.__table__
        match = (table.c.channel == channel.value, table.c.provider_message_id == provider_message_id)
        async with self._sessions() as session:
            rows = (await session.execute(
                select(table.c.status, table.c.error_code).where(*match).order_by(table.c.received_at, table.c.id)
            )).all()
            if rows:
                await session.execute(delete(table).where(*match))
                await session.commit()
        return [(status, error_code) for status, error_code in rows]

    async def add_resend(self, part: OutboundPart, suffix: str, meta: dict[str, str]) -> OutboundPart | None:
        """Replace a part the provider reported undelivered with a new pending one (key ``<key>:<suffix>``).

        The original becomes ``replaced``; the message goes back to ``processing`` so that its next
        job sends the new part. None if that resend exists already (a repeated report).
        """
        resend = OutboundPart(
            id=new_id(), idempotency_key=f"{part.idempotency_key}:{suffix}"[:128], conversation_id=part.conversation_id,
            inbound_message_id=part.inbound_message_id, channel=part.channel, recipient_id=part.recipient_id,
            role=part.role, part_index=part.part_index, text=part.text, sources=list(part.sources or []),
            meta={**(part.meta or {}), **meta}, state=PartState.PENDING,
        )
        async with self._sessions() as session:
            session.add(resend)
            await session.execute(update(OutboundPart).where(OutboundPart.id == part.id)
                                  .values(state=PartState.REPLACED, updated_at=utcnow()))
            await session.execute(update(InboundMessageRow).where(InboundMessageRow.id == part.inbound_message_id)
                                  .values(status=InboundStatus.PROCESSING))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None
        return resend

    async def reopen(self, message_id: str) -> None:
        """A part was added to a finished message: it is unfinished again until that part is sent."""
        async with self._connect() as connection:
            await connection.execute(update(InboundMessageRow).where(InboundMessageRow.id == message_id)
                                     .values(status=InboundStatus.PROCESSING))

    async def parts_awaiting_report(self, channel: Channel, sent_before: datetime, sent_after: datetime,
                                    limit: int) -> list[OutboundPart]:
        """Parts the provider accepted between the two times and never reported on (still ``sent``)."""
        async with self._one_statement() as session:
            rows = await session.scalars(
                select(OutboundPart).where(
                    OutboundPart.channel == channel.value, OutboundPart.state == PartState.SENT,
                    OutboundPart.provider_message_id.is_not(None),
                    OutboundPart.sent_at < sent_before, OutboundPart.sent_at >= sent_after,
                ).order_by(OutboundPart.sent_at).limit(limit)
            )
            return list(rows)

    # ---------------------------------------------------------------- Telegram chat moves
    async def chat_moved_to(self, chat_id: int) -> int | None:
        """The chat a Telegram group became (see :mod:`channels.telegram.staff_chat`), if it moved."""
        async with self._connect() as connection:
            return await connection.scalar(select(ChatMigration.new_chat_id).where(ChatMigration.old_chat_id == chat_id))

    async def record_chat_move(self, old_chat_id: int, new_chat_id: int) -> bool:
        """Record a move once; False if it was recorded already (by another process)."""
        async with self._sessions() as session:
            insert = dialect_insert(session)
            result = await session.execute(
                insert(ChatMigration).values(old_chat_id=old_chat_id, new_chat_id=new_chat_id, migrated_at=utcnow())
                .on_conflict_do_nothing(index_elements=["old_chat_id"])
            )
            await session.commit()
            return bool(result.rowcount)

    # ---------------------------------------------------------------- contacts and history
    async def last_inbound_at(self, channel: Channel, recipient_id: str) -> datetime | None:
        async with self._connect() as connection:
            return await connection.scalar(
                select(Contact.last_inbound_at).where(
                    Contact.channel == channel.value, Contact.channel_user_id == recipient_id
                )
            )

    async def mark_unreachable(self, channel: Channel, recipient_id: str) -> None:
        async with self._one_statement() as session:
            await session.execute(
                update(Contact)
                .where(Contact.channel == channel.value, Contact.channel_user_id == recipient_id)
                .values(unreachable=True)
            )
            await session.commit()

    async def conversation_for(self, channel: Channel, sender_id: str) -> str | None:
        async with self._one_statement() as session:
            return await session.scalar(
                select(Conversation.id)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Contact.channel == channel.value, Contact.channel_user_id == sender_id)
                .order_by(Conversation.created_at.desc())
                .limit(1)
            )

    async def transcript(self, conversation_id: str, limit: int = 50) -> list[dict]:
        """The conversation as the customer saw it: their messages and what we sent, oldest first."""
        async with self._sessions() as session:
            inbound = await session.execute(
                select(InboundMessageRow.text, InboundMessageRow.received_at, InboundMessageRow.id)
                .where(InboundMessageRow.conversation_id == conversation_id)
                .order_by(InboundMessageRow.received_at.desc())
                .limit(limit)
            )
            outbound = await session.execute(
                select(OutboundPart.role, OutboundPart.text, OutboundPart.created_at, OutboundPart.sources,
                       OutboundPart.inbound_message_id, OutboundPart.state, OutboundPart.meta)
                .where(OutboundPart.conversation_id == conversation_id, OutboundPart.state != PartState.FAILED,
                       OutboundPart.channel != Channel.STAFF.value)  # staff-group posts are not the customer's
                .order_by(OutboundPart.created_at.desc(), OutboundPart.part_index.desc())
                .limit(limit)
            )
            items = [
                {"role": "user", "text": text, "at": at.isoformat(), "message_id": mid, "sources": []}
                for text, at, mid in inbound
            ]
            # A hand-off keeps its "passed to our team" mark when the page shows the transcript again.
            items += [
                {"role": role, "text": text, "at": at.isoformat(), "message_id": mid, "sources": sources or [],
                 "escalate": (meta or {}).get("escalate") == "true", "language": (meta or {}).get("language")}
                for role, text, at, sources, mid, _state, meta in outbound
            ]
        items.sort(key=lambda item: (item["at"], item["role"] != "user"))
        return items[-limit:]

    async def history_turns(self, conversation_id: str, before_message_id: str, limit: int = 10) -> list[Turn]:
        """Turns preceding a message, for the agent's context."""
        items = await self.transcript(conversation_id, limit=limit * 2 + 2)
        async with self._sessions() as session:
            reset_at = await session.scalar(
                select(Conversation.context_reset_at).where(Conversation.id == conversation_id)
            )
        if reset_at is not None:
            items = [item for item in items if item["at"] > reset_at.isoformat()]
        turns: list[Turn] = []
        for item in items:
            if item["role"] == "user" and item["message_id"] == before_message_id:
                break
            turns.append(Turn(role=item["role"], text=item["text"]))
        return turns[-limit:]

    async def reset_context(self, conversation_id: str) -> None:
        """``/reset``: earlier turns no longer reach the agent (the transcript itself is kept)."""
        async with self._one_statement() as session:
            await session.execute(
                update(Conversation).where(Conversation.id == conversation_id).values(context_reset_at=utcnow())
            )
            await session.commit()

    async def record_feedback(self, conversation_id: str, rated_message_id: str, source_message_id: str,
                              helpful: bool) -> None:
        async with self._sessions() as session:
            insert = dialect_insert(session)
            await session.execute(
                insert(Feedback)
                .values(id=new_id(), conversation_id=conversation_id, inbound_message_id=rated_message_id,
                        source_message_id=source_message_id, helpful=helpful, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["inbound_message_id", "source_message_id"])
            )
            await session.commit()

    async def counts(self) -> dict[str, int]:
        async with self._sessions() as session:
            inbound = await session.scalar(select(func.count()).select_from(InboundMessageRow))
            replies = await session.scalar(select(func.count()).select_from(ReplyRow))
            parts = await session.scalar(select(func.count()).select_from(OutboundPart))
            return {"inbound": inbound or 0, "replies": replies or 0, "outbound": parts or 0}


# The per-message statements are built once, with bind parameters, and reused: building and keying a
# statement of this size costs more CPU than Postgres spends running it.
@functools.cache
def _conversation_work_query():  # noqa: ANN202
    message_id = bindparam("message_id")
    own = select(_INBOUND.c.conversation_id).where(_INBOUND.c.id == message_id).scalar_subquery()
    return (select(_INBOUND.c.id, _INBOUND.c.text, _INBOUND.c.status, _INBOUND.c.conversation_id)
            .where(_INBOUND.c.conversation_id == own,
                   _INBOUND.c.status.not_in(InboundStatus.DONE) | (_INBOUND.c.id == message_id))
            .order_by(*_PENDING_ORDER))


@functools.cache
def _begin_update():  # noqa: ANN202
    return (update(_INBOUND)
            .where(_INBOUND.c.id == bindparam("message_id"), _INBOUND.c.status.not_in(InboundStatus.DONE))
            .values(attempts=_INBOUND.c.attempts + 1,
                    status=case((_INBOUND.c.status == InboundStatus.QUEUED, InboundStatus.PROCESSING),
                                else_=_INBOUND.c.status)))


def _attempt_columns(message):  # noqa: ANN001, ANN202
    return (*message.c, _CONVERSATIONS.c.mode, _CONVERSATIONS.c.language, _CONTACTS.c.display_name,
            *(c.label(_REPLY_LABEL + c.name) for c in _REPLY_COLUMNS))


def _attempt_joins(query, message):  # noqa: ANN001, ANN202
    return (query.outerjoin(_CONVERSATIONS, _CONVERSATIONS.c.id == message.c.conversation_id)
            .outerjoin(_CONTACTS, _CONTACTS.c.id == message.c.contact_id)
            .outerjoin(_REPLIES, _REPLIES.c.inbound_message_id == message.c.id))


@functools.cache
def _begin_statement():  # noqa: ANN202
    """Postgres: the attempt's UPDATE … RETURNING in a CTE, joined to the conversation, sender and reply."""
    message = _begin_update().returning(*_INBOUND.c).cte("begun")
    return _attempt_joins(select(*_attempt_columns(message)).select_from(message), message)


@functools.cache
def _read_attempt():  # noqa: ANN202
    return _attempt_joins(select(*_attempt_columns(_INBOUND)), _INBOUND).where(_INBOUND.c.id == bindparam("message_id"))


def _finish_values(message_id: str, status: str) -> dict:
    return {"message_id": message_id, "final_status": status, "finished_at": utcnow()}


@functools.cache
def _finish_statement():  # noqa: ANN202
    message_id = bindparam("message_id")
    waiting = exists().where(_PARTS.c.inbound_message_id == message_id, _PARTS.c.state == PartState.PENDING)
    return (update(_INBOUND).where(_INBOUND.c.id == message_id)
            .values(status=case((waiting, InboundStatus.PROCESSING),
                                else_=bindparam("final_status", type_=_INBOUND.c.status.type)),
                    processed_at=bindparam("finished_at", type_=_INBOUND.c.processed_at.type)))


@functools.cache
def _sent_update():  # noqa: ANN202
    now = bindparam("now", type_=_PARTS.c.sent_at.type)
    return (update(_PARTS).where(_PARTS.c.id == bindparam("part_id"))
            .values(state=PartState.SENT, provider_message_id=bindparam("sent_provider_id"),
                    sent_at=now, updated_at=now))


@functools.cache
def _take_early():  # noqa: ANN202
    channel = select(_PARTS.c.channel).where(_PARTS.c.id == bindparam("part_id")).scalar_subquery()
    return (delete(_EARLY).where(_EARLY.c.channel == channel,
                                 _EARLY.c.provider_message_id == bindparam("sent_provider_id"))
            .returning(_EARLY.c.status, _EARLY.c.error_code, _EARLY.c.received_at, _EARLY.c.id))


@functools.cache
def _mark_sent_statement(finish: bool):  # noqa: ANN202
    """Postgres: the part's ``sent``, the early reports taken (returned), and with ``finish`` the
    message's final status, as one statement."""
    taken = _take_early().cte("taken")
    statement = (select(taken.c.status, taken.c.error_code).order_by(taken.c.received_at, taken.c.id)
                 .add_cte(_sent_update().returning(_PARTS.c.id).cte("sent")))
    if finish:
        statement = statement.add_cte(_finish_statement().returning(_INBOUND.c.id).cte("finished"))
    return statement


@functools.cache
def _save_reply_statement(parts: int):  # noqa: ANN202
    """:meth:`MessageStore.save_reply` on Postgres in one statement (for that many parts; parameters
    ``reply_<column>`` and ``part<n>_<column>``): the parts and the language are written only where
    the reply was. One row when it was (with ``queued_before``: how many parts a hook had queued for
    the message already), none when a reply existed."""
    saved_reply = (postgresql.insert(_REPLIES)
                   .values({c: bindparam(f"reply_{c.name}", type_=c.type) for c in _REPLIES.c})
                   .on_conflict_do_nothing(index_elements=[_REPLIES.c.inbound_message_id])
                   .returning(_REPLIES.c.id).cte("saved_reply"))
    was_saved = select(saved_reply.c.id).exists()
    queued_before = (select(func.count()).select_from(_PARTS)
                     .where(_PARTS.c.inbound_message_id == bindparam("reply_inbound_message_id"))
                     .scalar_subquery())  # the statement's snapshot: the parts written here are not seen
    statement = select(saved_reply.c.id, queued_before.label("queued_before"))
    if parts:
        columns = list(_PARTS.c)
        rows = [select(*(bindparam(f"part{i}_{c.name}", type_=c.type).label(c.name) for c in columns))
                .where(was_saved) for i in range(parts)]
        statement = statement.add_cte(_PARTS.insert().from_select(columns, union_all(*rows) if parts > 1
                                                                  else rows[0])
                                      .returning(_PARTS.c.id).cte("saved_parts"))
    return statement.add_cte(
        update(_CONVERSATIONS)
        .where(_CONVERSATIONS.c.id == bindparam("reply_conversation_id"), was_saved)
        .values(language=bindparam("reply_language")).returning(_CONVERSATIONS.c.id).cte("language_set"))
