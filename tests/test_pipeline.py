"""The message pipeline in both modes: store before ack, recovery after a crash, no double replies."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from channels.messages import Channel
from memory.models import InboundStatus, OutboundPart, PartState, ReplyRow
from tests.harness import MECHANICS, SentEvents, drain, running_container, web_message
from workers.ingress import requeue_unanswered


async def test_accepted_message_is_stored_before_processing_and_answered(backend):
    settings = backend.settings(**MECHANICS)
    async with running_container(settings, start_queue=False) as container:
        sent = SentEvents()
        sent.attach(container, "visitor-0001")
        result = await container.ingress.accept(web_message("visitor-0001", "What is the capital of Peru?"))
        stored = await container.store.load(result.message_id)
        assert stored is not None and stored.status == InboundStatus.QUEUED  # durable before any work
        await drain(container)
        await asyncio.sleep(0.2)  # production: the reply event crosses Redis pub/sub
        reply = await container.store.get_reply(result.message_id)
        assert reply is not None and reply.escalate and reply.reason == "low_confidence"
        assert [e["message_id"] for e in sent.replies("visitor-0001")] == [result.message_id]
        assert (await container.store.load(result.message_id)).status == InboundStatus.ESCALATED


async def test_duplicate_delivery_is_acknowledged_once(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        first = await container.ingress.accept(web_message("visitor-0002", "hello", provider_id="p-1"))
        again = await container.ingress.accept(web_message("visitor-0002", "hello", provider_id="p-1"))
        assert not first.duplicate and again.duplicate and again.message_id == first.message_id
        await drain(container)
        assert await container.store.counts() == {"inbound": 1, "replies": 1, "outbound": 1}


async def test_restart_processes_messages_accepted_but_never_answered(backend):
    settings = backend.settings(**MECHANICS)
    async with running_container(settings, start_queue=False) as crashed:
        accepted = [await crashed.ingress.accept(web_message("visitor-0003", f"question {i}")) for i in range(3)]
    # The process died with three messages stored and nothing answered; a new one starts.
    async with running_container(settings, start_queue=False) as restarted:
        assert len(await restarted.store.unanswered()) == 3
        await requeue_unanswered(restarted.store, restarted.queue, older_than=None)
        await drain(restarted)
        assert await restarted.store.unanswered() == []
        for result in accepted:
            assert await restarted.store.get_reply(result.message_id) is not None


async def test_retry_after_crash_mid_job_does_not_resend_a_sent_part(backend):
    settings = backend.settings(**MECHANICS)
    async with running_container(settings, start_queue=False) as container:
        sent = SentEvents()
        sent.attach(container, "visitor-0004")
        result = await container.ingress.accept(web_message("visitor-0004", "first"))
        await drain(container)
        await asyncio.sleep(0.2)
        assert len(sent.replies()) == 1
        # Simulate a crash after the send was recorded but before the message was marked done.
        await container.store.finish(result.message_id, InboundStatus.PROCESSING)
        await container.queue.enqueue(result.message_id)
        await drain(container)
        await asyncio.sleep(0.2)
        assert len(sent.replies()) == 1, "a part already sent must not be sent again"
        assert (await container.store.load(result.message_id)).status == InboundStatus.ESCALATED


async def test_messages_of_one_conversation_are_answered_in_order(backend):
    async with running_container(backend.settings(max_jobs=4, **MECHANICS), start_queue=False) as container:
        sent = SentEvents()
        sent.attach(container, "visitor-0005")
        ids = [(await container.ingress.accept(web_message("visitor-0005", f"message {i}"))).message_id
               for i in range(6)]
        await drain(container)
        await asyncio.sleep(0.3)
        assert [e["message_id"] for e in sent.replies("visitor-0005")] == ids
        async with container.store._sessions() as session:  # the recorded send order agrees
            rows = (await session.scalars(select(OutboundPart).order_by(OutboundPart.sent_at))).all()
            assert [r.inbound_message_id for r in rows] == ids
            assert all(r.state == PartState.SENT for r in rows)
            assert len((await session.scalars(select(ReplyRow))).all()) == 6


async def test_web_channel_is_recorded_with_its_sender(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        result = await container.ingress.accept(web_message("visitor-0006", "hi there"))
        stored = await container.store.load(result.message_id)
        assert stored.message.channel == Channel.WEB and stored.message.sender_id == "visitor-0006"
        assert await container.store.conversation_for(Channel.WEB, "visitor-0006") == stored.message.conversation_id


class FailingHook:
    """A hook that breaks on its first ``failures`` calls (a bug, or the ticket store down)."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def before_agent(self, stored):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("ticket store unavailable")
        return None

    async def after_agent(self, stored, reply):  # noqa: ANN001, ANN201
        return []


async def test_a_failure_while_deciding_is_retried_then_answered(backend):
    async with running_container(backend.settings(job_max_tries=2, **MECHANICS), start_queue=False) as container:
        hook = FailingHook(failures=1)
        container.processor.add_hook(hook)
        sent = SentEvents()
        sent.attach(container, "visitor-0010")
        result = await container.ingress.accept(web_message("visitor-0010", "What are your opening hours?"))
        await drain(container)
        await asyncio.sleep(0.2)
        stored = await container.store.load(result.message_id)
        assert hook.calls == 2 and stored.attempts == 2
        assert stored.status in InboundStatus.DONE and len(sent.replies()) == 1
        assert (await container.store.get_reply(result.message_id)).reason != "system_error"


async def test_a_message_that_fails_every_try_gets_the_apology_not_silence(backend):
    async with running_container(backend.settings(job_max_tries=2, **MECHANICS), start_queue=False) as container:
        container.processor.add_hook(FailingHook(failures=10**6))
        sent = SentEvents()
        sent.attach(container, "visitor-0011")
        result = await container.ingress.accept(web_message("visitor-0011", "What are your opening hours?"))
        await drain(container)
        await asyncio.sleep(0.2)
        reply = await container.store.get_reply(result.message_id)
        assert reply.escalate and reply.reason == "system_error"
        assert len(sent.replies()) == 1 and (await container.store.load(result.message_id)).attempts == 2
