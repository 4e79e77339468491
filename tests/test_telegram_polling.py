"""Long polling end to end: real PTB Bot, fake Bot API, real message store, file-backed offset."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from channels.base import AcceptResult, PermanentChannelError
from channels.messages import InboundMessage
from channels.telegram.client import build_bot
from channels.telegram.polling import FileOffsetStore, OffsetStoreError, TelegramPoller
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from workers.ingress import PipelineIngress
from tests.harness import RecordingQueue, sqlite_store

CUSTOMER = 7100200


class ObservedIngress:
    """Passes every message to the real ingress, recording provider ids; can refuse chosen ones once."""

    def __init__(self, inner: PipelineIngress, refuse_once: set[str] | None = None) -> None:
        self._inner = inner
        self._refuse_once = set(refuse_once or ())
        self.seen: list[str] = []

    async def accept(self, message: InboundMessage) -> AcceptResult:
        self.seen.append(message.provider_message_id)
        if message.provider_message_id in self._refuse_once:
            self._refuse_once.discard(message.provider_message_id)
            raise RuntimeError("database is locked")
        return await self._inner.accept(message)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def store(tmp_path: Path):
    async with sqlite_store(tmp_path / "telegram.db") as message_store:
        yield message_store


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as api:
        yield api
        assert api.errors == []


@pytest.fixture
async def bot(fake):
    async with build_bot(TEST_TOKEN, api_base_url=fake.url) as client:
        yield client


@pytest.fixture
def offsets(tmp_path: Path) -> FileOffsetStore:
    return FileOffsetStore(tmp_path / "state" / "telegram_offset")


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def poller(bot, ingress, offsets, **kwargs) -> TelegramPoller:
    kwargs.setdefault("poll_timeout", 2)
    kwargs.setdefault("initial_backoff", 0.05)
    return TelegramPoller(bot, ingress, offsets, None, **kwargs)


async def test_three_updates_are_accepted_offset_saved_and_restart_does_not_reaccept(fake, bot, store, queue,
                                                                                      offsets):
    updates = UpdateFactory()
    batch = [updates.text(CUSTOMER, "hi"), updates.photo(CUSTOMER, caption="this unit"),
             updates.callback(CUSTOMER, "human")]
    fake.queue_updates(*batch)
    ingress = ObservedIngress(PipelineIngress(store, queue))
    first = poller(bot, ingress, offsets)
    task = asyncio.create_task(first.run())
    await eventually(lambda: len(queue.enqueued) == 3)
    first.stop()
    await asyncio.wait_for(task, 2)
    last = batch[-1]["update_id"]
    assert await offsets.load() == last + 1
    assert ingress.seen == [f"update:{u['update_id']}" for u in batch]
    stored = [(await store.load(mid)).message for mid in queue.enqueued]
    assert [m.text for m in stored] == ["hi", "this unit", "human"]

    # Telegram redelivers what it believes unconfirmed, plus one new update: only the new one is accepted.
    fresh = updates.text(CUSTOMER, "are you there?")
    fake.queue_updates(*batch, fresh)
    polls_before_restart = len(fake.calls_to("getUpdates"))
    restarted_ingress = ObservedIngress(PipelineIngress(store, queue))
    second = poller(bot, restarted_ingress, FileOffsetStore(offsets._path))
    task = asyncio.create_task(second.run())
    await eventually(lambda: len(queue.enqueued) == 4)
    second.stop()
    await asyncio.wait_for(task, 2)
    assert restarted_ingress.seen == [f"update:{fresh['update_id']}"]
    assert fake.calls_to("getUpdates")[polls_before_restart].params["offset"] == last + 1
    assert (await store.counts())["inbound"] == 4
    assert await offsets.load() == fresh["update_id"] + 1


async def test_offset_is_not_advanced_past_an_update_the_ingress_refused(fake, bot, store, queue, offsets):
    updates = UpdateFactory()
    batch = [updates.text(CUSTOMER, f"message {i}") for i in range(3)]
    fake.queue_updates(*batch)
    refused = f"update:{batch[1]['update_id']}"
    ingress = ObservedIngress(PipelineIngress(store, queue), refuse_once={refused})
    polling = poller(bot, ingress, offsets)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(queue.enqueued) == 3)
    polling.stop()
    await asyncio.wait_for(task, 2)
    ids = [f"update:{u['update_id']}" for u in batch]
    assert ingress.seen == [ids[0], ids[1], ids[1], ids[2]]
    offsets_asked = [c.params.get("offset") for c in fake.calls_to("getUpdates")]
    assert offsets_asked[:2] == [None, batch[1]["update_id"]]  # refetched from the refused update
    assert await offsets.load() == batch[2]["update_id"] + 1


async def test_network_failures_back_off_and_recover(fake, bot, store, queue, offsets):
    fake.drop_next("getUpdates", count=2)
    fake.fail_next("getUpdates", status=502, description="Bad Gateway")
    fake.queue_updates(UpdateFactory().text(CUSTOMER, "still there?"))
    polling = poller(bot, PipelineIngress(store, queue), offsets, initial_backoff=0.1)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(queue.enqueued) == 1)
    polling.stop()
    await asyncio.wait_for(task, 2)
    calls = fake.calls_to("getUpdates")
    assert [c.status for c in calls[:4]] == [0, 0, 502, 200]
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:4])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4  # doubling backoff


async def test_flood_control_on_get_updates_waits_retry_after(fake, bot, store, queue, offsets):
    fake.fail_next("getUpdates", status=429, description="Too Many Requests: retry after 1", retry_after=1)
    fake.queue_updates(UpdateFactory().text(CUSTOMER, "hello"))
    polling = poller(bot, PipelineIngress(store, queue), offsets)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(queue.enqueued) == 1)
    polling.stop()
    await asyncio.wait_for(task, 2)
    first, second = fake.calls_to("getUpdates")[:2]
    assert second.at - first.at >= 0.95


async def test_stop_interrupts_a_long_poll_promptly(fake, bot, store, queue, offsets):
    polling = poller(bot, PipelineIngress(store, queue), offsets, poll_timeout=30)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(fake.calls_to("getUpdates")) == 1)
    started = time.monotonic()
    polling.stop()
    await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 1.0
    assert task.exception() is None
    assert await offsets.load() is None


async def test_a_configured_webhook_is_removed_before_polling(fake, bot, store, queue, offsets):
    await bot.set_webhook("https://old.example.com/webhooks/telegram")
    fake.queue_updates(UpdateFactory().text(CUSTOMER, "hi"))
    polling = poller(bot, PipelineIngress(store, queue), offsets)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(queue.enqueued) == 1)
    polling.stop()
    await asyncio.wait_for(task, 2)
    assert fake.webhook is None
    assert [c.method for c in fake.calls[1:4]] == ["setWebhook", "deleteWebhook", "getUpdates"]


async def test_a_revoked_token_ends_polling_with_a_permanent_error(fake, bot, store, queue, offsets):
    fake.fail_next("getUpdates", status=401, description="Unauthorized")
    polling = poller(bot, PipelineIngress(store, queue), offsets)
    with pytest.raises(PermanentChannelError) as info:
        await asyncio.wait_for(polling.run(), 2)
    assert info.value.code == "invalid_token"


async def test_file_offset_store(tmp_path: Path):
    path = tmp_path / "nested" / "offset"
    store = FileOffsetStore(path)
    assert await store.load() is None
    await store.save(42)
    await store.save(43)
    assert await FileOffsetStore(path).load() == 43
    assert [p.name for p in path.parent.iterdir()] == ["offset"]  # no temp files left behind
    path.write_text("garbage")
    with pytest.raises(OffsetStoreError):
        await store.load()


async def test_cancelling_the_run_task_leaves_no_poll_behind(fake, bot, store, queue, offsets):
    polling = poller(bot, PipelineIngress(store, queue), offsets, poll_timeout=30)
    task = asyncio.create_task(polling.run())
    await eventually(lambda: len(fake.calls_to("getUpdates")) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    leftovers = [t for t in asyncio.all_tasks() if "get_updates" in repr(t.get_coro()) and not t.done()]
    assert leftovers == []
