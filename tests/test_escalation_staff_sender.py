"""The staff-group sender against the fake Bot API: topics kept alive, confirmations, uploads."""
from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import PermanentChannelError
from channels.messages import Attachment, AttachmentKind, Channel, InboundMessage, OutboundMessage
from channels.telegram.client import build_bot
from channels.telegram.ratelimit import Bucket, LocalRateLimiter, TelegramLimits
from escalation.models import Priority, TicketStatus
from escalation.staff_sender import StaffSender
from escalation.tickets import NewTicket, TicketRepository
from escalation.topics import TopicKeeper
from config.sql import create_engine, session_factory
from memory.models import PartState
from memory.store import MessageStore
from supportlah.schema import metadata
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI

STAFF = -1009876543210
FAST = TelegramLimits(private_chat=Bucket(1000.0), group_chat=Bucket(1000.0), overall=Bucket(1000.0))
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6300"
                    "01000005000100d2e1b2400000000049454e44ae426082")


class FolderMedia:
    """A media source that 'downloads' from a local folder (the Twilio fetcher's contract)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.asked: list[str] = []

    async def fetch(self, attachment: Attachment) -> Attachment:
        self.asked.append(attachment.url or "")
        name = (attachment.url or "").rsplit("/", 1)[-1]
        if not (self.folder / name).exists():
            raise FileNotFoundError(f"no such media {name}")
        return attachment.model_copy(update={"url": str(self.folder / name), "mime_type": "image/png"})


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as api:
        yield api
        assert api.errors == []


@pytest.fixture
async def world(fake, tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'staff.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    store, tickets = MessageStore(sessions), TicketRepository(sessions)
    message = InboundMessage(channel=Channel.WHATSAPP, provider_message_id="SM1", sender_id="whatsapp:+6590000001",
                             sender_name="Ah Kow", text="My aircon is leaking")
    await store.record_inbound(message)
    stored = await store.load(message.id)
    ticket = await tickets.open(NewTicket(
        conversation_id=stored.message.conversation_id, contact_id=stored.contact_id, channel="whatsapp",
        customer_id=message.sender_id, customer_name="Ah Kow", language="en", reason="low_confidence",
        priority=Priority.NORMAL, opened_by_message_id=message.id))
    media = FolderMedia(tmp_path)
    async with build_bot(TEST_TOKEN, api_base_url=fake.url) as bot:
        topics = TopicKeeper(bot, STAFF, tickets, use_topics=True)
        sender = StaffSender(bot, LocalRateLimiter(FAST), topics, tickets, store, media=media)
        yield sender, tickets, store, ticket, message, media
    await engine.dispose()


def post(ticket, text: str, kind: str = "notice", key: str = "k", **meta: str) -> OutboundMessage:
    return OutboundMessage(channel=Channel.STAFF, recipient_id=str(STAFF), conversation_id=ticket.conversation_id,
                           text=text, idempotency_key=key,
                           metadata={"staff_kind": kind, "ticket_id": ticket.id, **meta})


async def test_card_opens_a_topic_and_later_posts_reuse_it(fake, world):
    sender, tickets, _store, ticket, _message, _media = world
    receipt = await sender.send(post(ticket, "the card", "card", "k1"))
    await sender.send(post(ticket, "a notice", "notice", "k2"))
    [topic_call] = fake.calls_to("createForumTopic")
    assert topic_call.params["name"] == "#1 · WhatsApp · Ah Kow"
    thread_ids = {m.thread_id for m in fake.sent_to(STAFF)}
    assert len(thread_ids) == 1 and None not in thread_ids
    assert (await tickets.get(ticket.id)).card_message_id == int(receipt.provider_message_id)
    assert (await tickets.ticket_for_post(STAFF, int(receipt.provider_message_id))).id == ticket.id


async def test_a_closed_topic_is_reopened_and_a_renamed_ticket_renames_it(fake, world):
    sender, tickets, _store, ticket, _message, _media = world
    await sender.send(post(ticket, "the card", "card", "k1"))
    thread_id = fake.sent[0].thread_id
    fake.close_topic(STAFF, thread_id)
    await sender.send(post(ticket, "after staff closed the topic", "notice", "k2"))
    assert len(fake.calls_to("reopenForumTopic")) == 1 and fake.sent[-1].thread_id == thread_id
    await tickets.update(ticket.id, number=7)  # as if a later ticket of this conversation
    await sender.send(post(await tickets.get(ticket.id), "new card", "card", "k3"))
    assert fake.topic(STAFF, thread_id)["name"] == "#7 · WhatsApp · Ah Kow"
    assert len(fake.calls_to("createForumTopic")) == 1


async def test_confirmation_reacts_or_says_what_failed(fake, world):
    sender, _tickets, store, ticket, message, _media = world
    await sender.send(post(ticket, "the card", "card", "k1"))
    good = OutboundMessage(channel=Channel.WHATSAPP, recipient_id=message.sender_id,
                           conversation_id=ticket.conversation_id, text="hi", idempotency_key="p1")
    bad = good.model_copy(update={"id": "p2" * 16, "idempotency_key": "p2"})
    for part in (good, bad):
        await store.add_outbound(part, role="staff")
    await store.mark_part(good.id, PartState.SENT)
    await store.mark_part(bad.id, PartState.FAILED, error_code="forbidden", last_error="403")

    await sender.send(post(ticket, "", "confirm", "c1", confirms=good.id, react_to="77"))
    assert fake.reactions == [{"chat_id": STAFF, "message_id": 77, "emoji": ["👌"]}]

    fake.fail_next("setMessageReaction", status=400, description="Bad Request: REACTION_INVALID")
    await sender.send(post(ticket, "", "confirm", "c2", confirms=good.id, react_to="78"))
    assert fake.sent[-1].text == "✓ Delivered to the customer"
    assert fake.calls_to("sendMessage")[-1].params["reply_parameters"]["message_id"] == 78

    await sender.send(post(ticket, "", "confirm", "c3", confirms=f"{good.id},{bad.id}", react_to="79"))
    assert fake.sent[-1].text == "⚠️ Not delivered to the customer: the customer has blocked the bot"


async def test_customer_files_are_uploaded_and_a_missing_one_is_reported(fake, world, tmp_path):
    sender, _tickets, _store, ticket, _message, media = world
    (tmp_path / "ME123.png").write_bytes(PNG)
    await sender.send(post(ticket, "👤 Ah Kow", "upload", "u1", media_url="https://api.twilio.test/Media/ME123.png",
                           media_kind=AttachmentKind.IMAGE.value, media_name="", media_mime="image/png"))
    [upload] = fake.calls_to("sendPhoto")
    assert list(upload.files.values()) == [PNG] and upload.params["caption"] == "👤 Ah Kow"
    await sender.send(post(ticket, "👤 Ah Kow", "upload", "u2", media_url="https://api.twilio.test/Media/ME404.png",
                           media_kind=AttachmentKind.DOCUMENT.value))
    assert fake.sent[-1].text.startswith("👤 Ah Kow\n📎 (the customer's attachment could not be fetched")
    assert media.asked == ["https://api.twilio.test/Media/ME123.png", "https://api.twilio.test/Media/ME404.png"]


async def test_unknown_tickets_and_missing_cards(fake, world):
    sender, tickets, _store, ticket, _message, _media = world
    with pytest.raises(PermanentChannelError, match="unknown ticket"):
        await sender.send(post(ticket, "x", "notice", "n1", ticket_id="nope"))
    await sender.send(post(ticket, "card text", "card_update", "n2"))  # no card yet: posted instead
    assert fake.sent[-1].text == "card text" and fake.calls_to("editMessageText") == []
    await tickets.change(ticket.id, key="z", kind="closed", actor="staff:1", status=TicketStatus.CLOSED)
    await sender.send(post(ticket, "🔒 Closed by Alice.", "close_topic", "n3"))
    assert fake.topic(STAFF, fake.sent[-1].thread_id)["closed"] is True


async def test_a_long_caption_with_entities_and_emoji_fits_telegram(fake, world, tmp_path):
    """Captions hold 1,024 UTF-16 units of visible text: cut before escaping (never inside ``&amp;``),
    counting an emoji as two; what does not fit follows as text, nothing is lost."""
    sender, _tickets, _store, ticket, _message, _media = world
    (tmp_path / "leak.png").write_bytes(PNG)
    text = ("Tom & Jerry's aircon 😅 leaks <again>. " * 40).strip()
    await sender.send(post(ticket, text, "upload", "k-cap", media_url="https://media.example/leak.png",
                           media_kind="image", media_name="leak.png"))

    [photo] = [c for c in fake.calls_to("sendPhoto") if c.status == 200]
    caption = photo.params["caption"]
    assert "&amp;" in caption and len(caption.encode("utf-16-le")) // 2 > 1024, "escaped markup may be longer"
    visible = caption.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    assert len(visible.encode("utf-16-le")) // 2 <= 1024
    follow_up = fake.sent_to(STAFF)[-1]
    assert " ".join([visible, follow_up.text]).split() == text.split()


async def test_a_mention_never_pushes_a_post_over_4096(fake, world):
    sender, _tickets, _store, ticket, _message, _media = world
    await sender.send(post(ticket, "😅" * 2048, "notice", "k-mention", mention_id="42", mention_name="Alice Lim"))

    [sent] = fake.sent_to(STAFF)
    assert len(sent.text.encode("utf-16-le")) // 2 <= 4096 and sent.text.endswith("… Alice Lim")


async def test_bytes_telegram_cannot_read_as_a_photo_go_as_a_document(fake, world, tmp_path):
    sender, _tickets, _store, ticket, _message, _media = world
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic not a jpeg")
    await sender.send(post(ticket, "the customer's photo", "upload", "k-heic",
                           media_url="https://media.example/photo.heic", media_kind="image", media_name="photo.heic"))

    assert [c.status for c in fake.calls_to("sendPhoto")] == [400]
    [document] = fake.calls_to("sendDocument")
    assert document.status == 200 and document.params["caption"] == "the customer's photo"


async def test_an_unchanged_card_and_an_already_named_topic_are_success(fake, world):
    """Telegram answers 400 "message is not modified" / TOPIC_NOT_MODIFIED to an edit that changes nothing."""
    sender, tickets, _store, ticket, _message, _media = world
    await sender.send(post(ticket, "the card", "card", "k1"))
    ticket = await tickets.get(ticket.id)
    receipt = await sender.send(post(ticket, "the card", "card_update", "k2"))
    assert [c.status for c in fake.calls_to("editMessageText")] == [400]
    assert receipt.provider_message_id == f"card:{ticket.card_message_id}"

    topic = await tickets.topic_for(ticket.conversation_id)
    await tickets.update_topic(ticket.conversation_id, name="stale name")  # our record drifted from Telegram's
    await sender.send(post(await tickets.get(ticket.id), "new card", "card", "k3"))
    assert [c.status for c in fake.calls_to("editForumTopic")] == [400]
    assert (await tickets.topic_for(ticket.conversation_id)).name == topic.name
    await sender.send(post(await tickets.get(ticket.id), "newer card", "card", "k4"))
    assert len(fake.calls_to("editForumTopic")) == 1, "not asked again"
