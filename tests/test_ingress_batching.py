"""Group commit at the edge: concurrent deliveries share a transaction and an enqueue, and each
caller still learns its own outcome (new, duplicate, or failed) only after its message is durable."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, select

from channels.messages import Channel, InboundMessage, utcnow
from config.settings import load_settings
from config.sql import session_factory
from memory.models import Contact, Conversation, InboundMessageRow, InboundStatus
from tests.harness import MECHANICS, drain, running_container, web_message
from workers.group_commit import GroupCommit


def whatsapp(provider_id: str, sender: str = "whatsapp:+6591110000", *, name: str | None = None,
             text: str = "Do you service condos?", seconds_ago: float = 0) -> InboundMessage:
    return InboundMessage(channel=Channel.WHATSAPP, provider_message_id=provider_id, sender_id=sender,
                          sender_name=name, text=text, received_at=utcnow() - timedelta(seconds=seconds_ago))


async def test_one_batch_stores_new_messages_and_reports_repeats(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        earlier = await container.store.record_inbound(whatsapp("SM-old", seconds_ago=60))
        batch = [
            whatsapp("SM-1", seconds_ago=3),
            whatsapp("SM-old"),  # delivered before this batch
            whatsapp("SM-2", "whatsapp:+6592220000", name="Mei Ling", seconds_ago=2),
            whatsapp("SM-1"),  # the same delivery twice in one batch
            whatsapp("SM-3", seconds_ago=1, name="Ahmad"),
        ]
        results = await container.store.record_inbound_many(batch)

        assert [r.duplicate for r in results] == [False, True, False, True, False]
        assert results[1].message_id == earlier.message_id
        assert results[3].message_id == results[0].message_id == batch[0].id
        async with session_factory(container.engine)() as session:
            stored = (await session.execute(select(InboundMessageRow.provider_message_id,
                                                   InboundMessageRow.conversation_id))).all()
            contacts = {c.channel_user_id: c for c in (await session.scalars(select(Contact))).all()}
            conversations = (await session.scalars(select(Conversation))).all()
        assert sorted(pid for pid, _ in stored) == ["SM-1", "SM-2", "SM-3", "SM-old"]
        assert len(contacts) == 2 and len(conversations) == 2
        first = contacts["whatsapp:+6591110000"]
        assert first.display_name == "Ahmad"  # the newest name the customer used
        assert abs(first.last_inbound_at - batch[4].received_at) < timedelta(milliseconds=1)
        assert {cid for pid, cid in stored if pid in ("SM-old", "SM-1", "SM-3")} == {
            c.id for c in conversations if c.contact_id == first.id}


async def test_a_repeat_delivery_does_not_move_the_contacts_last_message_time(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        original = whatsapp("SM-9", seconds_ago=600)
        await container.store.record_inbound(original)
        await container.store.record_inbound_many([whatsapp("SM-9")])  # Twilio retried ten minutes later
        async with session_factory(container.engine)() as session:
            contact = await session.scalar(select(Contact))
        assert abs(contact.last_inbound_at - original.received_at) < timedelta(milliseconds=1)


async def test_concurrent_deliveries_share_transactions_and_all_get_answered(backend):
    async with running_container(backend.settings(**MECHANICS)) as container:
        commits: list[int] = []
        event.listen(container.engine.sync_engine, "commit", lambda _conn: commits.append(1))
        messages = [whatsapp(f"SM-c{i}", f"whatsapp:+65933{i % 7:05d}", text="How much is a general service?")
                    for i in range(60)]
        results = await asyncio.gather(*(container.ingress.accept(m) for m in messages))
        repeats = await asyncio.gather(*(container.ingress.accept(whatsapp(m.provider_message_id, m.sender_id))
                                         for m in messages[:10]))

        assert [r.message_id for r in results] == [m.id for m in messages]
        assert not any(r.duplicate for r in results) and all(r.duplicate for r in repeats)
        assert [r.message_id for r in repeats] == [m.id for m in messages[:10]]
        assert len(commits) <= 10, f"60 concurrent deliveries took {len(commits)} commits"
        await drain(container)
        counts = await container.store.counts()
        assert counts["inbound"] == 60 and counts["replies"] == 60


async def test_group_commit_fails_only_the_bad_item():
    written: list[list[int]] = []

    async def write_many(items):  # noqa: ANN001, ANN202
        written.append(list(items))
        if 13 in items:
            raise ValueError("13 is unlucky")
        await asyncio.sleep(0.01)
        return [item * 2 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write_many, max_batch=8)
    outcomes = await asyncio.gather(*(commit.submit(i) for i in range(20)), return_exceptions=True)

    assert [o for i, o in enumerate(outcomes) if i != 13] == [i * 2 for i in range(20) if i != 13]
    assert isinstance(outcomes[13], ValueError)
    assert max(len(batch) for batch in written) == 8  # batched, and never above the limit
    assert [13] in written  # the failing batch was retried item by item


async def test_a_caller_that_goes_away_does_not_lose_its_write():
    stored: list[str] = []
    release = asyncio.Event()

    async def write_many(items):  # noqa: ANN001, ANN202
        await release.wait()
        stored.extend(items)
        return list(items)

    commit: GroupCommit[str, str] = GroupCommit(write_many)
    caller = asyncio.create_task(commit.submit("kept"))
    await asyncio.sleep(0.01)
    caller.cancel()
    release.set()
    assert await commit.submit("next") == "next"
    assert stored == ["kept", "next"]


async def test_enqueue_many_skips_jobs_already_waiting(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        messages = [web_message(f"visitor-{i}", "What are your opening hours?") for i in range(5)]
        ids = [r.message_id for r in await container.store.record_inbound_many(messages)]
        await container.queue.enqueue_many(ids[:3])
        await container.queue.enqueue_many(ids)  # three of these are already queued
        if backend.name == "production":
            from workers.arq_queue import queue_name

            assert await container.redis.zcard(queue_name(container.settings)) == 5
        await drain(container)
        async with session_factory(container.engine)() as session:
            statuses = (await session.scalars(select(InboundMessageRow.status))).all()
        assert len(statuses) == 5 and set(statuses) <= set(InboundStatus.DONE)
        assert (await container.store.counts())["replies"] == 5


async def test_a_connection_postgres_dropped_does_not_fail_the_webhook(tmp_path, caplog):
    """Connections are not pinged before use (that cost three round trips per transaction): when
    Postgres drops them (restart, failover, idle timeout) the ingress finds out on first use and
    stores the batch again on a fresh connection, so the provider still gets its 200."""
    import asyncpg

    from tests.services import PG_HOST, PG_PORT, PG_USER, fresh_postgres, fresh_redis_prefix

    async with fresh_postgres() as database_url, fresh_redis_prefix() as (redis_url, prefix):
        settings = load_settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url,
                                 redis_url=redis_url, redis_prefix=prefix, **MECHANICS)
        async with running_container(settings, start_queue=False) as container:
            await asyncio.gather(*(container.ingress.accept(whatsapp(f"SM-before{i}")) for i in range(4)))
            database = database_url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
            try:
                dropped = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", database)
            finally:
                await admin.close()
            assert dropped >= 1  # the pool's idle connections are gone

            results = await asyncio.gather(*(container.ingress.accept(whatsapp(f"SM-after{i}")) for i in range(4)))

            assert not any(r.duplicate for r in results)
            assert (await container.store.counts())["inbound"] == 8
            assert any("connection dropped" in r.getMessage() for r in caplog.records)  # the retry did the work


async def test_a_job_whose_connection_was_dropped_is_retried_not_lost(tmp_path, caplog):
    import asyncpg

    from tests.services import PG_HOST, PG_PORT, PG_USER, fresh_postgres, fresh_redis_prefix

    async with fresh_postgres() as database_url, fresh_redis_prefix() as (redis_url, prefix):
        settings = load_settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url,
                                 redis_url=redis_url, redis_prefix=prefix, **MECHANICS)
        async with running_container(settings, start_queue=False) as container:
            await asyncio.gather(*(container.ingress.accept(web_message(f"visitor-{i}", "When are you open?"))
                                   for i in range(3)))
            admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
            try:
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                    database_url.rsplit("/", 1)[1])
            finally:
                await admin.close()

            await drain(container)

            assert (await container.store.counts())["replies"] == 3
            assert any("connection dropped" in r.getMessage() for r in caplog.records)


async def test_a_recovery_backlog_is_enqueued_in_bounded_chunks(tmp_path):
    from tests.services import fresh_redis_prefix
    from workers.arq_queue import ArqQueue, queue_name

    async with fresh_redis_prefix() as (redis_url, prefix):
        settings = load_settings(_env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_prefix=prefix)
        queue = await ArqQueue.connect(settings)
        try:
            ids = [f"m{i:05d}" for i in range(1_234)]
            await queue.enqueue_many(ids)
            await queue.enqueue_many(ids[:700])  # all still waiting: nothing is queued twice
            assert await queue._pool.zcard(queue_name(settings)) == 1_234  # noqa: SLF001 - arq's own queue
        finally:
            await queue.close()
