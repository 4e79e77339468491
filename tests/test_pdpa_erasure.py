"""Erasure, verified: after it, no table, no Redis key, no vector and no file holds the customer's data.

The checks do not trust the erasure code's own counts: they read every row of every
table, every Redis key under the deployment's prefix and search the vector index for
what the customer said.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select, text

from config.types import Reply
from channels.messages import Attachment, AttachmentKind, OutboundMessage, new_id, utcnow
from escalation.models import Ticket
from memory.models import InboundMessageRow
from memory.pdpa import ErasureRow
from memory.store import StoredMessage
from supportlah.schema import metadata
from tests.harness import drain, running_container, web_message

VISITOR = "visitor-erase-0001"
PHONE = "+65 9123 4567"
NRIC = "S7654321D"
EMAIL = "mei.ling@example.com"
SAID = [
    f"Hi, I'm Mei Ling, call me at {PHONE} or mail {EMAIL}",
    f"My NRIC is {NRIC} and I live in a condo in Bishan, the zebrafinch aircon is leaking",
    "I want to talk to a person please",
]
MARKERS = [VISITOR, PHONE, "91234567", NRIC, EMAIL, "Mei Ling", "zebrafinch", "Bishan"]

KB = "# Chemical wash\n\nA chemical wash for one wall-mounted unit costs $80 and takes about an hour.\n"


async def rows_mentioning(container, needles: list[str]) -> dict[str, list[str]]:
    """Every table, every row, rendered as text: which rows still mention any needle."""
    found: dict[str, list[str]] = {}
    async with container.engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            for row in rows:
                rendered = json.dumps([str(v) for v in row], ensure_ascii=False)
                hits = [n for n in needles if n in rendered]
                if hits:
                    found.setdefault(table.name, []).append(",".join(hits))
    return found


async def redis_values_mentioning(container, needles: list[str]) -> list[str]:
    if container.redis is None:
        return []
    redis: Redis = container.redis
    prefix = container.settings.redis_prefix
    hits = []
    keys = [k async for k in redis.scan_iter(match=f"*{prefix}*", count=1000)]
    for key in keys:
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "hash":
            values = [v for pair in (await redis.hgetall(key)).items() for v in pair]
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        else:
            values = []
        blob = key.decode(errors="replace") + " " + " ".join(
            v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values if v is not None)
        hits += [f"{key.decode(errors='replace')}: {n}" for n in needles if n in blob]
    return hits


async def index_hits_mentioning(container, needles: list[str]) -> list[str]:
    hits = []
    for said in SAID:
        for mode in ("dense", "sparse"):
            for chunk in await container.retriever.search(said, k=20, mode=mode):
                hits += [f"{chunk.chunk_id}: {n}" for n in needles if n in chunk.text]
    return hits


async def have_a_conversation(container, media_file: Path) -> str:
    """Three messages (one with an attachment in the media folder) fully processed; returns the contact id."""
    ids = []
    for index, said in enumerate(SAID):
        message = web_message(VISITOR, said)
        if index == 0:
            message.sender_name = "Mei Ling"
            message.attachments = [Attachment(kind=AttachmentKind.IMAGE, mime_type="image/png", size=8,
                                              url=str(media_file), name="aircon.png")]
        ids.append((await container.ingress.accept(message)).message_id)
        await drain(container)
    return (await container.store.load(ids[0])).contact_id


async def test_erasure_leaves_nothing_in_sql_redis_index_or_files(backend, tmp_path):
    settings = backend.settings()
    async with running_container(settings, start_queue=False) as container:
        kb = tmp_path / "kb" / "prices.md"
        kb.parent.mkdir()
        kb.write_text(KB)
        await container.ingestor.ingest([kb])
        media_file = settings.data_dir / "media" / "2025" / "01" / "aircon.png"
        media_file.parent.mkdir(parents=True)
        media_file.write_bytes(b"\x89PNG\r\n\x1a\n")
        indexed_before = await container.index.count()

        contact_id = await have_a_conversation(container, media_file)
        before = await rows_mentioning(container, MARKERS)
        assert {"contacts", "inbound_messages", "outbound_messages", "tickets"} <= set(before), before
        if container.redis is not None:
            assert await redis_values_mentioning(container, MARKERS), "memory should hold the turns in Redis"
        async with container.privacy.sessions() as session:
            [ticket_id] = (await session.scalars(select(Ticket.id).where(Ticket.contact_id == contact_id))).all()

        report = await container.privacy.personal_data.erase(contact_id, requested_via="admin")
        assert report is not None and report.counts["inbound_messages"] == 3 and report.counts["tickets"] == 1

        assert await rows_mentioning(container, MARKERS) == {}
        assert await rows_mentioning(container, [contact_id]) == {
            "contacts": [contact_id], "conversations": [contact_id], "tickets": [contact_id], "erasures": [contact_id]}
        assert await redis_values_mentioning(container, MARKERS + [contact_id]) == []
        assert await index_hits_mentioning(container, MARKERS) == []
        assert await container.index.count() == indexed_before
        assert not media_file.exists()
        async with container.privacy.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert (ticket.customer_id, ticket.customer_name, ticket.summary, ticket.status) == (
                "erased", None, "", "closed")
            [proof] = (await session.scalars(select(ErasureRow))).all()
            assert proof.contact_id == contact_id and proof.requested_via == "admin"
        assert await container.privacy.personal_data.export(contact_id) is None
        assert await container.privacy.personal_data.erase(contact_id, requested_via="admin") is None

        # The same person writing again is a new contact with a fresh conversation.
        again = await container.ingress.accept(web_message(VISITOR, "hello again"))
        await drain(container)
        assert (await container.store.load(again.message_id)).contact_id != contact_id


class Gate:
    """A test hook that holds one message's job mid-flight (while it owns the conversation lock)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def before_agent(self, stored: StoredMessage):  # noqa: ANN201
        if stored.message.text == self.text:
            self.entered.set()
            await self.release.wait()
        return None

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []


async def test_erasure_waits_for_a_job_in_flight_and_nothing_is_resurrected(backend):
    async with running_container(backend.settings(), start_queue=False) as container:
        first = await container.ingress.accept(web_message("visitor-erase-0002", "hello, first question"))
        await drain(container)
        contact_id = (await container.store.load(first.message_id)).contact_id
        gate = Gate("zebrafinch second question")
        container.processor.add_hook(gate)
        await container.ingress.accept(web_message("visitor-erase-0002", gate.text))
        worker = asyncio.create_task(drain(container))
        await asyncio.wait_for(gate.entered.wait(), 30)

        erasure = asyncio.create_task(container.privacy.personal_data.erase(contact_id, requested_via="admin"))
        await asyncio.sleep(0.5)
        assert not erasure.done(), "erasure must wait for the job holding the conversation"
        gate.release.set()
        await worker
        report = await asyncio.wait_for(erasure, 30)
        assert report.counts["inbound_messages"] == 2 and report.counts["replies"] == 2

        assert await rows_mentioning(container, ["visitor-erase-0002", "zebrafinch", "first question"]) == {}
        assert await redis_values_mentioning(container, ["zebrafinch", contact_id]) == []


async def test_a_queued_message_of_an_erased_contact_is_dropped_not_answered(backend):
    async with running_container(backend.settings(), start_queue=False) as container:
        queued = await container.ingress.accept(web_message("visitor-erase-0003", "zebrafinch, are you there?"))
        contact_id = (await container.store.load(queued.message_id)).contact_id
        await container.privacy.personal_data.erase(contact_id, requested_via="admin")
        await drain(container)  # the job runs after the erasure: it must find nothing to do
        assert await container.store.load(queued.message_id) is None
        assert await rows_mentioning(container, ["visitor-erase-0003", "zebrafinch"]) == {}
        assert await redis_values_mentioning(container, ["zebrafinch", contact_id]) == []


async def test_customer_deletes_their_own_data_after_confirming(backend):
    async with running_container(backend.settings(), start_queue=False) as container:
        async def say(words: str) -> Reply:
            result = await container.ingress.accept(web_message("visitor-erase-0004", words))
            await drain(container)
            return await container.store.get_reply(result.message_id)

        await say("my zebrafinch unit needs servicing")
        asked = await say("Please delete my data")
        assert "YES DELETE" in asked.text
        kept = await say("no")
        assert kept.text == "Okay, nothing was deleted."
        await say("padam data saya")
        done = await say("ya padam")
        assert done.backend["answerer"] == "pdpa:erasure" and done.language == "ms"
        await container.privacy.personal_data.wait_background(timeout=30)

        assert await rows_mentioning(container, ["visitor-erase-0004", "zebrafinch"]) == {}
        async with container.privacy.sessions() as session:
            [proof] = (await session.scalars(select(ErasureRow))).all()
            assert proof.requested_via == "customer" and proof.counts["inbound_messages"] == 5
            assert (await session.execute(text("SELECT count(*) FROM inbound_messages"))).scalar() == 0
            assert (await session.scalars(select(InboundMessageRow))).all() == []


async def test_a_message_that_raced_the_erasure_is_stripped_and_not_answered(backend):
    """A message stored against the contact in the instant it was erased lands on the anonymous shell:
    the pipeline's tombstone check strips it and sends nothing."""
    async with running_container(backend.settings(), start_queue=False) as container:
        first = await container.ingress.accept(web_message("visitor-erase-0005", "hello"))
        await drain(container)
        stored = await container.store.load(first.message_id)
        await container.privacy.personal_data.erase(stored.contact_id, requested_via="admin")
        raced = InboundMessageRow(id=new_id(), channel="web", provider_message_id=new_id(),
                                  contact_id=stored.contact_id, conversation_id=stored.message.conversation_id,
                                  sender_id="visitor-erase-0005", text="zebrafinch, my number is 91234567",
                                  attachments=[], meta={}, received_at=utcnow(), status="queued")
        async with container.privacy.sessions() as session, session.begin():
            session.add(raced)
        await container.queue.enqueue(raced.id)
        await drain(container)
        reply = await container.store.get_reply(raced.id)
        assert reply.backend["answerer"] == "pdpa:erased" and await container.store.parts_for(raced.id) == []
        assert await rows_mentioning(container, ["visitor-erase-0005", "zebrafinch", "91234567"]) == {}
