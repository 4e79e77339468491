"""Update → InboundMessage for every kind we accept, using PTB's own parsing of documented payloads."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from telegram import Update

from channels.messages import AttachmentKind, Channel
from channels.telegram.client import build_bot
from channels.telegram.normalize import normalize_update, parse_command
from tests.fakes.telegram_api import TEST_TOKEN, UpdateFactory

STAFF = -1001234567890
CUSTOMER = 5550001


@pytest.fixture
def bot():
    return build_bot(TEST_TOKEN, api_base_url="http://127.0.0.1:9")  # parsing only: never contacted


@pytest.fixture
def updates() -> UpdateFactory:
    return UpdateFactory()


def normalize(bot, payload: dict, staff: int | None = STAFF):
    return normalize_update(Update.de_json(payload, bot), staff_chat_id=staff)


def test_private_text_message(bot, updates):
    payload = updates.text(CUSTOMER, "How much is a chemical wash?")
    msg = normalize(bot, payload)
    assert msg is not None
    assert msg.channel is Channel.TELEGRAM
    assert msg.provider_message_id == f"update:{payload['update_id']}"
    assert msg.sender_id == str(CUSTOMER)
    assert msg.sender_name == "Mei Ling Tan"
    assert msg.text == "How much is a chemical wash?"
    assert msg.attachments == []
    assert msg.metadata["sent_at"] == datetime.fromtimestamp(updates.now, timezone.utc).isoformat()
    assert abs((msg.received_at - datetime.now(timezone.utc)).total_seconds()) < 60  # our clock, not Telegram's
    assert msg.metadata["telegram_message_id"] == str(payload["message"]["message_id"])
    assert msg.metadata["language_code"] == "en"
    assert "command" not in msg.metadata and "staff" not in msg.metadata


def test_photo_uses_the_largest_size_and_keeps_the_caption(bot, updates):
    msg = normalize(bot, updates.photo(CUSTOMER, caption="Is this leak normal?"))
    assert msg.text == "Is this leak normal?"
    [photo] = msg.attachments
    assert (photo.kind, photo.url, photo.mime_type, photo.size) == (
        AttachmentKind.IMAGE, "tg-file:photo-large", "image/jpeg", 98_000)


def test_document(bot, updates):
    msg = normalize(bot, updates.document(CUSTOMER, file_name="quote.pdf", size=12_345))
    [doc] = msg.attachments
    assert (doc.kind, doc.url, doc.name, doc.mime_type, doc.size) == (
        AttachmentKind.DOCUMENT, "tg-file:doc-quote.pdf", "quote.pdf", "application/pdf", 12_345)
    assert msg.text == ""


def test_voice_and_audio(bot, updates):
    voice = normalize(bot, updates.voice(CUSTOMER))
    [clip] = voice.attachments
    assert (clip.kind, clip.url, clip.mime_type) == (AttachmentKind.AUDIO, "tg-file:voice-1", "audio/ogg")
    assert voice.metadata["voice"] == "true"
    audio = normalize(bot, updates.audio(CUSTOMER))
    [track] = audio.attachments
    assert (track.kind, track.name, track.mime_type) == (AttachmentKind.AUDIO, "noise.mp3", "audio/mpeg")
    assert "voice" not in audio.metadata


def test_location(bot, updates):
    msg = normalize(bot, updates.location(CUSTOMER, 1.3521, 103.8198))
    [loc] = msg.attachments
    assert loc.kind is AttachmentKind.LOCATION
    assert loc.url == "geo:1.3521,103.8198"
    assert (msg.metadata["latitude"], msg.metadata["longitude"]) == ("1.3521", "103.8198")


def test_contact(bot, updates):
    msg = normalize(bot, updates.contact(CUSTOMER, "+6591234567", "Ah", "Beng"))
    [card] = msg.attachments
    assert (card.kind, card.name, card.url) == (AttachmentKind.CONTACT, "Ah Beng", "tel:+6591234567")
    assert msg.metadata["contact_phone_number"] == "+6591234567"


def test_unsupported_content_is_kept_as_other(bot, updates):
    msg = normalize(bot, updates.sticker(CUSTOMER))
    [other] = msg.attachments
    assert other.kind is AttachmentKind.OTHER
    assert msg.metadata["unsupported"] == "sticker"


def test_edited_message_is_a_new_message_marked_as_edit(bot, updates):
    original = updates.text(CUSTOMER, "Do you service Daikin?")
    message_id = original["message"]["message_id"]
    edit = updates.edited(CUSTOMER, message_id, "Do you service Mitsubishi?")
    first, second = normalize(bot, original), normalize(bot, edit)
    assert second.provider_message_id != first.provider_message_id
    assert second.text == "Do you service Mitsubishi?"
    assert second.metadata["edited"] == "true"
    assert second.metadata["original_message_id"] == str(message_id)
    assert second.metadata["sent_at"] == datetime.fromtimestamp(updates.now + 30, timezone.utc).isoformat()
    assert "edited" not in first.metadata


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("human", {"command": "human", "args": ""}),
        ("lang:ta", {"command": "language", "args": "ta"}),
        ("fb:up:0123456789abcdef0123456789abcdef",
         {"feedback": "up", "feedback_for": "0123456789abcdef0123456789abcdef"}),
        ("fb:down:abc", {"feedback": "down", "feedback_for": "abc"}),
        ("something-else", {}),
    ],
)
def test_callback_query(bot, updates, data, expected):
    payload = updates.callback(CUSTOMER, data, query_id="q-77", language_code="zh-hans")
    msg = normalize(bot, payload)
    assert msg.text == data
    assert msg.sender_id == str(CUSTOMER)
    assert msg.provider_message_id == f"update:{payload['update_id']}"
    assert msg.metadata["kind"] == "callback"
    assert msg.metadata["callback_query_id"] == "q-77"
    assert msg.metadata["language_code"] == "zh-hans"
    for key, value in expected.items():
        assert msg.metadata[key] == value
    assert set(expected) <= set(msg.metadata)
    if not expected:
        assert not {"command", "feedback"} & set(msg.metadata)


@pytest.mark.parametrize("command", ["start", "help", "human", "language", "reset", "delete_my_data", "my_data"])
def test_commands_keep_text_and_add_metadata(bot, updates, command):
    msg = normalize(bot, updates.text(CUSTOMER, f"/{command}"))
    assert msg.text == f"/{command}"
    assert (msg.metadata["command"], msg.metadata["args"]) == (command, "")


def test_command_with_bot_suffix_and_arguments(bot, updates):
    msg = normalize(bot, updates.text(CUSTOMER, "/language@supportlah_test_bot  ms "))
    assert (msg.metadata["command"], msg.metadata["args"]) == ("language", "ms")
    assert parse_command("/start promo-2024") == ("start", "promo-2024")
    assert parse_command("/unknown") is None
    assert parse_command("not /start") is None


def test_other_groups_are_ignored(bot, updates):
    assert normalize(bot, updates.group_text(-100999, "anyone here?")) is None
    assert normalize(bot, updates.group_text(-100999, "/start")) is None


def test_staff_group_is_marked_staff_with_topic(bot, updates):
    payload = updates.message(STAFF, text="I'll call the customer now", user_id=4242, thread_id=1001)
    msg = normalize(bot, payload)
    assert msg.sender_id == str(STAFF)
    assert msg.metadata["staff"] == "true"
    assert msg.metadata["user_id"] == "4242"
    assert msg.metadata["thread_id"] == "1001"
    assert normalize(bot, payload, staff=None) is None  # without a staff group configured it's just a group


def test_service_messages_and_other_update_kinds_are_ignored(bot, updates):
    joined = updates.message(STAFF, new_chat_members=[UpdateFactory.user(99)])
    assert normalize(bot, joined) is None
    channel_post = {"update_id": 9, "channel_post": {"message_id": 1, "date": updates.now, "text": "promo",
                                                     "chat": {"id": -100777, "type": "channel", "title": "News"}}}
    assert normalize(bot, channel_post) is None
