"""Record a batch of inbound messages in one transaction with a handful of Core statements.

The webhook acknowledges a delivery only after its message is committed, so this is
the hottest write path in the product. Concurrent deliveries are coalesced by
:class:`workers.group_commit.GroupCommit` and land here together: the cost is a
fixed number of statements per batch (look up repeats, upsert contacts, find or
create conversations, insert messages, touch conversations), not per message.
SQLAlchemy Core on the session's connection skips the ORM unit of work, which
was most of the old per-message cost. Works the same on SQLite and Postgres.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, false, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import AcceptResult
from channels.messages import InboundMessage, new_id, utcnow
from config.sql import dialect_insert, insert_for
from memory.models import Contact, Conversation, ConversationMode, InboundMessageRow, InboundStatus

_CONTACTS = Contact.__table__
_CONVERSATIONS = Conversation.__table__
_INBOUND = InboundMessageRow.__table__


async def record_inbound_batch(connection: AsyncConnection, messages: Sequence[InboundMessage]) -> list[AcceptResult]:
    """Insert what is new, report what was seen before; one result per message, in order.

    The caller commits. A provider id repeated inside the batch is stored once and
    reported as a duplicate for the later copies, exactly as if it came later.
    """
    key_of = {id(m): (m.channel.value, m.provider_message_id) for m in messages}
    known = await _existing_ids(connection, list(dict.fromkeys(key_of.values())))
    fresh: dict[tuple[str, str], InboundMessage] = {}
    for message in messages:
        key = key_of[id(message)]
        if key not in known and key not in fresh:
            fresh[key] = message
    if fresh:
        contacts = await _upsert_contacts(connection, list(fresh.values()))
        conversations = await _current_conversations(connection, contacts)
        inserted = await _insert_messages(connection, list(fresh.values()), contacts, conversations)
        raced = [key for key, message in fresh.items() if message.id not in inserted]
        if raced:  # another process stored the same delivery between our lookup and our insert
            known.update(await _existing_ids(connection, raced))
        await _touch_conversations(connection, [m for m in fresh.values() if m.id in inserted],
                                   contacts, conversations)
    results = []
    first_copy_seen: set[tuple[str, str]] = set()
    for message in messages:
        key = key_of[id(message)]
        if key in known:
            results.append(AcceptResult(message_id=known[key], duplicate=True))
        elif key in first_copy_seen:
            results.append(AcceptResult(message_id=fresh[key].id, duplicate=True))
        else:
            first_copy_seen.add(key)
            results.append(AcceptResult(message_id=fresh[key].id, duplicate=False))
    return results


async def _existing_ids(connection: AsyncConnection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    rows = await connection.execute(
        select(_INBOUND.c.channel, _INBOUND.c.provider_message_id, _INBOUND.c.id)
        .where(tuple_(_INBOUND.c.channel, _INBOUND.c.provider_message_id).in_(keys))
    )
    return {(channel, provider_id): message_id for channel, provider_id, message_id in rows}


async def _upsert_contacts(connection: AsyncConnection, messages: list[InboundMessage]) -> dict[tuple[str, str], str]:
    """Create unknown senders, refresh known ones; returns (channel, sender id) → contact id.

    Rows are merged per sender first (one statement may not touch a row twice) and sorted,
    so concurrent batches lock contacts in the same order and cannot deadlock.
    """
    merged: dict[tuple[str, str], dict] = {}
    for message in messages:
        key = (message.channel.value, message.sender_id)
        row = merged.setdefault(key, {"id": new_id(), "channel": key[0], "channel_user_id": key[1],
                                      "display_name": None, "unreachable": False, "created_at": utcnow(),
                                      "last_inbound_at": message.received_at})
        row["last_inbound_at"] = max(row["last_inbound_at"], message.received_at)
        row["display_name"] = message.sender_name or row["display_name"]
    statement = _contact_upsert(connection.dialect.name)
    rows = await connection.execute(statement, [merged[key] for key in sorted(merged)])
    return {(channel, user): contact_id for contact_id, channel, user in rows}


@functools.cache
def _contact_upsert(dialect: str):  # noqa: ANN202 - a statement is immutable; building it is costly
    insert = insert_for(dialect)(_CONTACTS)
    later = or_(_CONTACTS.c.last_inbound_at.is_(None), insert.excluded.last_inbound_at > _CONTACTS.c.last_inbound_at)
    return insert.on_conflict_do_update(
        index_elements=[_CONTACTS.c.channel, _CONTACTS.c.channel_user_id],
        set_={
            "last_inbound_at": case((later, insert.excluded.last_inbound_at), else_=_CONTACTS.c.last_inbound_at),
            "unreachable": false(),
            "display_name": case((insert.excluded.display_name.is_(None), _CONTACTS.c.display_name),
                                 else_=insert.excluded.display_name),
        },
    ).returning(_CONTACTS.c.id, _CONTACTS.c.channel, _CONTACTS.c.channel_user_id)


async def _current_conversations(connection: AsyncConnection,
                                 contacts: dict[tuple[str, str], str]) -> dict[str, str]:
    """contact id → its latest conversation, created on first contact.

    A new conversation gets a deterministic id, so two racing first messages of one
    contact (in different processes) land in one conversation.
    """
    contact_ids = sorted(set(contacts.values()))
    rows = await connection.execute(
        select(_CONVERSATIONS.c.contact_id, _CONVERSATIONS.c.id)
        .where(_CONVERSATIONS.c.contact_id.in_(contact_ids))
        .order_by(_CONVERSATIONS.c.contact_id, _CONVERSATIONS.c.created_at.desc())
    )
    current: dict[str, str] = {}
    for contact_id, conversation_id in rows:
        current.setdefault(contact_id, conversation_id)
    missing = {contact_id: channel for (channel, _user), contact_id in contacts.items() if contact_id not in current}
    if missing:
        now = utcnow()
        new_rows = [{"id": f"c{contact_id[:31]}", "contact_id": contact_id, "channel": channel,
                     "mode": ConversationMode.BOT,
                     "created_at": now, "last_message_at": now} for contact_id, channel in sorted(missing.items())]
        insert = dialect_insert(connection)
        await connection.execute(insert(_CONVERSATIONS).on_conflict_do_nothing(index_elements=["id"]), new_rows)
        current.update({row["contact_id"]: row["id"] for row in new_rows})
    return current


async def _insert_messages(connection: AsyncConnection, messages: list[InboundMessage],
                           contacts: dict[tuple[str, str], str], conversations: dict[str, str]) -> set[str]:
    """Insert the messages; returns the ids actually inserted (a concurrent twin is skipped)."""
    rows = []
    for message in messages:
        contact_id = contacts[(message.channel.value, message.sender_id)]
        rows.append({
            "id": message.id, "channel": message.channel.value, "provider_message_id": message.provider_message_id,
            "contact_id": contact_id, "conversation_id": conversations[contact_id], "sender_id": message.sender_id,
            "text": message.text, "attachments": [a.model_dump(mode="json") for a in message.attachments],
            "metadata": dict(message.metadata), "reply_to": message.reply_to, "received_at": message.received_at,
            "status": InboundStatus.QUEUED, "attempts": 0,
        })
    insert = dialect_insert(connection)
    statement = (insert(_INBOUND).on_conflict_do_nothing(index_elements=["channel", "provider_message_id"])
                 .returning(_INBOUND.c.id))
    return {row[0] for row in await connection.execute(statement, rows)}


async def _touch_conversations(connection: AsyncConnection, messages: list[InboundMessage],
                               contacts: dict[tuple[str, str], str], conversations: dict[str, str]) -> None:
    latest: dict[str, datetime] = {}
    for message in messages:
        conversation_id = conversations[contacts[(message.channel.value, message.sender_id)]]
        latest[conversation_id] = max(latest.get(conversation_id, message.received_at), message.received_at)
    if not latest:
        return
    await connection.execute(
        update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("conversation"))
        .values(last_message_at=bindparam("at")),
        [{"conversation": cid, "at": at} for cid, at in sorted(latest.items())],
    )
