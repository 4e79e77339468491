"""The message store: every inbound message is committed here before it is acknowledged.

One class over SQLAlchemy async sessions, identical on SQLite and Postgres. It is
the system of record the workers consult to make processing idempotent: a
message already answered is never answered again, and a reply part already sent
is never sent again.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.types import Reply, Turn
from channels.base import AcceptResult
from channels.messages import Attachment, Channel, InboundMessage, OutboundMessage, new_id, utcnow
from config.sql import autocommit_connections, dialect_insert, single_statement_sessions
from memory.inbound import record_inbound_batch
from memory.models import (
    ChatMigration,
    Contact,
    Conversation,
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
    message: InboundMessage
    contact_id: str
    status: str
    attempts: int
    conversation_mode: str
    conversation_language: str | None


class MessageStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._one_statement = single_statement_sessions(sessions)  # no BEGIN/COMMIT round trips
        self._connect = autocommit_connections(sessions)  # and no session either, for plain Core statements

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
        table, conversation, contact = InboundMessageRow.__table__, Conversation.__table__, Contact.__table__
        async with self._connect() as connection:
            found = (await connection.execute(
                select(table, conversation.c.mode, conversation.c.language, contact.c.display_name)
                .outerjoin(conversation, conversation.c.id == table.c.conversation_id)
                .outerjoin(contact, contact.c.id == table.c.contact_id)
                .where(table.c.id == message_id)
            )).first()
        if found is None:
            return None
        row = found._mapping
        msg = InboundMessage(
            id=row[table.c.id],
            channel=Channel(row[table.c.channel]),
            provider_message_id=row[table.c.provider_message_id],
            sender_id=row[table.c.sender_id],
            sender_name=row[contact.c.display_name],
            conversation_id=row[table.c.conversation_id],
            text=row[table.c.text],
            attachments=[Attachment.model_validate(a) for a in row[table.c.attachments] or []],
            received_at=row[table.c.received_at],
            reply_to=row[table.c.reply_to],
            metadata=dict(row[table.c["metadata"]] or {}),
        )
        return StoredMessage(
            message=msg,
            contact_id=row[table.c.contact_id],
            status=row[table.c.status],
            attempts=row[table.c.attempts],
            conversation_mode=row[conversation.c.mode] or "bot",
            conversation_language=row[conversation.c.language],
        )

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

    async def unfinished_in_conversation(self, conversation_id: str) -> list[str]:
        """Ids of this conversation's messages not yet done, oldest first (the processing order)."""
        async with self._connect() as connection:
            rows = await connection.scalars(
                select(InboundMessageRow.id)
                .where(
                    InboundMessageRow.conversation_id == conversation_id,
                    InboundMessageRow.status.not_in(InboundStatus.DONE),
                )
                .order_by(InboundMessageRow.received_at, InboundMessageRow.id)
            )
            return list(rows)

    async def begin_attempt(self, message_id: str) -> int:
        """Count one more attempt (a queued message becomes processing); returns the attempt number."""
        table = InboundMessageRow.__table__
        async with self._connect() as connection:
            attempts = await connection.scalar(
                update(table).where(table.c.id == message_id)
                .values(attempts=table.c.attempts + 1,
                        status=case((table.c.status == InboundStatus.QUEUED, InboundStatus.PROCESSING),
                                    else_=table.c.status))
                .returning(table.c.attempts)
            )
        assert attempts is not None, f"begin_attempt on unknown message {message_id}"
        return attempts

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
    ) -> bool:
        """Record the decision and its outbound parts atomically. False if a reply already existed.

        The message stays unfinished until :meth:`finish`: a reply whose parts are not
        all sent still holds back later messages of the conversation.
        """
        sources = [{"document": s.document, "chunk_id": s.chunk_id, "score": s.score} for s in reply.sources]
        async with self._sessions() as session:
            session.add(
                ReplyRow(
                    inbound_message_id=message_id,
                    conversation_id=conversation_id,
                    text=reply.text,
                    language=reply.language,
                    confidence=reply.confidence,
                    escalate=reply.escalate,
                    reason=reply.reason,
                    sources=sources,
                    backend=dict(reply.backend),
                )
            )
            for index, part in enumerate(parts):
                session.add(self._part_row(part, index, role=part.metadata.get("role", "assistant")))
            await session.execute(
                update(Conversation).where(Conversation.id == conversation_id).values(language=reply.language)
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    async def finish(self, message_id: str, status: str) -> None:
        """Mark the message done, unless a part was added meanwhile (a resend after a delivery
        report): then it stays ``processing`` and the job the report enqueued sends that part."""
        table, parts = InboundMessageRow.__table__, OutboundPart.__table__
        waiting = exists().where(parts.c.inbound_message_id == message_id, parts.c.state == PartState.PENDING)
        async with self._connect() as connection:
            await connection.execute(
                update(table).where(table.c.id == message_id)
                .values(status=case((waiting, InboundStatus.PROCESSING), else_=status), processed_at=utcnow())
            )

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
            sources=list(part.sources),
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
                return None
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
