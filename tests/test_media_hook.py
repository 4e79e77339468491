"""Attachments through the real pipeline: downloaded, type-checked, voice notes transcribed or the
customer asked to type, photos without a question handed to a person — never dropped silently."""
from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from agent.texts import text as canned_text
from channels.messages import AttachmentKind, Channel
from supportlah.app import create_app
from tests.fakes.openai_audio import FakeTranscriptionAPI
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.harness import MECHANICS, drain, running_container

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "media-hook-token"
PUBLIC_URL = "https://support.example.com"
BUSINESS = "whatsapp:+6560002222"
CUSTOMER = "whatsapp:+6598765432"
OGG = b"OggS" + b"\x00" * 200


def _twilio_settings(backend, fake: FakeTwilioApi, **extra):
    return backend.settings(**MECHANICS, public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                            twilio_whatsapp_from=BUSINESS, twilio_api_base_url=fake.base_url, **extra)


async def _post_voice_note(client: TestClient, media_url: str, sid: str) -> None:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS, "Body": "",
            "NumMedia": "1", "MediaUrl0": media_url, "MediaContentType0": "audio/ogg"}
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + "/webhooks/twilio/whatsapp", form)
    response = await client.post("/webhooks/twilio/whatsapp", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status == 200


async def test_voice_note_without_speech_to_text_asks_the_customer_to_type(backend, tmp_path: Path):
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    try:
        # stt_local=False: as without the `voice` extra (tests/test_voice_notes.py has the local transcriber)
        async with running_container(_twilio_settings(backend, fake, stt_local=False), start_queue=False) as container:
            async with TestClient(TestServer(create_app(container))) as client:
                await _post_voice_note(client, fake.add_media("voice.ogg", OGG, "audio/ogg"), "SM" + "1" * 32)
                await drain(container)
            sent = [m for m in fake.messages if m.sid]
            assert [m.body for m in sent] == [canned_text("voice_note", "en")]
            conversation = await container.store.conversation_for(Channel.WHATSAPP, CUSTOMER)
            [user_turn] = [t for t in await container.store.transcript(conversation) if t["role"] == "user"]
            stored = await container.store.load(user_turn["message_id"])
            [audio] = stored.message.attachments
            assert audio.kind == AttachmentKind.AUDIO and Path(audio.url).read_bytes() == OGG
            assert fake.media_requests == ["voice.ogg"] and fake.errors == []
    finally:
        await fake.stop()


async def test_voice_note_is_transcribed_when_speech_to_text_is_configured(backend):
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await fake.start()
    try:
        async with FakeTranscriptionAPI("What is the capital of Peru?") as stt:
            settings = _twilio_settings(backend, fake, stt_base_url=stt.base_url, stt_api_key="stt-key")
            async with running_container(settings, start_queue=False) as container:
                async with TestClient(TestServer(create_app(container))) as client:
                    await _post_voice_note(client, fake.add_media("v.ogg", OGG, "audio/ogg"), "SM" + "2" * 32)
                    await drain(container)
                conversation = await container.store.conversation_for(Channel.WHATSAPP, CUSTOMER)
                [user_turn] = [t for t in await container.store.transcript(conversation) if t["role"] == "user"]
                assert user_turn["text"] == "What is the capital of Peru?"
                reply = await container.store.get_reply(user_turn["message_id"])
                assert reply.reason == "low_confidence"  # the transcript was answered like typed text
            assert stt.errors == [] and stt.requests[0]["size"] == len(OGG) and stt.requests[0]["model"] == "whisper-1"
    finally:
        await fake.stop()


async def test_telegram_photo_without_a_question_goes_to_a_person_and_oversized_files_are_refused(tmp_path):
    from tests.conftest import Backend

    backend = Backend("embedded", {"data_dir": tmp_path / "data"})
    updates = UpdateFactory()
    async with FakeTelegramAPI() as api:
        api.add_file("photo-large", b"\xff\xd8\xff\xe0" + b"\x00" * 500, "photos/p.jpg")
        settings = backend.settings(**MECHANICS, telegram_bot_token=TEST_TOKEN, telegram_webhook_secret="s3cret-token",
                                    telegram_api_base_url=api.url, telegram_media_max_bytes=100_000)
        async with running_container(settings, start_queue=False) as container:
            async with TestClient(TestServer(create_app(container))) as client:
                headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
                photo = await client.post("/webhooks/telegram", data=json.dumps(updates.photo(4242)), headers={
                    **headers, "Content-Type": "application/json"})
                assert photo.status == 200
                big = updates.document(4343, size=5_000_000)
                assert (await client.post("/webhooks/telegram", data=json.dumps(big),
                                          headers={**headers, "Content-Type": "application/json"})).status == 200
                await drain(container)
            for chat in (4242, 4343):
                conversation = await container.store.conversation_for(Channel.TELEGRAM, str(chat))
                [turn] = [t for t in await container.store.transcript(conversation) if t["role"] == "user"]
                reply = await container.store.get_reply(turn["message_id"])
                stored = await container.store.load(turn["message_id"])
                if chat == 4242:
                    assert reply.escalate and reply.reason == "attachment"
                    [image] = stored.message.attachments
                    assert image.kind == AttachmentKind.IMAGE and Path(image.url).stat().st_size == 504
                else:
                    [refused] = stored.message.attachments
                    assert refused.url is None and "refused" in refused.name  # recorded, not silently dropped
            assert sorted(m.chat_id for m in api.sent) == [4242, 4343]  # two conversations, any order
        assert api.errors == []
