"""TelegramSender with the real PTB Bot against the fake Bot API: text fidelity, keyboards, errors."""
from __future__ import annotations

import html
import json

import pytest
from telegram.error import BadRequest

from channels.base import AmbiguousSendError, PermanentChannelError, RecipientUnreachable, TransientChannelError
from channels.messages import Channel, OutboundMessage
from channels.telegram import texts
from channels.telegram.client import build_bot
from channels.telegram.commands import command_reply
from channels.telegram.errors import ChatMigratedError, TopicNotFound
from channels.splitting import text_length as utf16_length
from channels.telegram.outbound import MAX_MESSAGE_CHARS, TelegramSender, split_for_telegram
from channels.telegram.ratelimit import Bucket, LocalRateLimiter, TelegramLimits
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI

CUSTOMER = 6001234
STAFF = -1003000000001
INBOUND_ID = "9f1c2e3d4b5a69788796a5b4c3d2e1f0"
FAST = TelegramLimits(private_chat=Bucket(rate=1000.0), group_chat=Bucket(rate=1000.0), overall=Bucket(rate=1000.0))


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # opt into PTB's future retry_after type; silences its warning


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as api:
        yield api
        assert api.errors == []


@pytest.fixture
async def sender(fake):
    bot = build_bot(TEST_TOKEN, api_base_url=fake.url)
    await bot.initialize()
    telegram = TelegramSender(bot, LocalRateLimiter(FAST))
    yield telegram
    await telegram.close()


def part(text: str, *, recipient: int = CUSTOMER, in_reply_to: str | None = INBOUND_ID, **metadata: str):
    return OutboundMessage(channel=Channel.TELEGRAM, recipient_id=str(recipient), conversation_id="conv-1",
                           text=text, in_reply_to=in_reply_to, idempotency_key=f"{in_reply_to}:{text[:10]}",
                           metadata=metadata)


def buttons(markup: dict | None) -> list[list[tuple[str, str]]]:
    if markup is None:
        return []
    return [[(b["text"], b["callback_data"]) for b in row] for row in markup["inline_keyboard"]]


# ---------------------------------------------------------------------------- splitting

def test_split_keeps_short_text_whole():
    assert split_for_telegram("Our hotline is 6123 4567.") == ["Our hotline is 6123 4567."]


def test_split_cuts_long_english_at_sentence_ends():
    sentences = [f"Sentence number {i} explains one more detail of the servicing package." for i in range(200)]
    text = " ".join(sentences)
    parts = split_for_telegram(text)
    assert len(parts) >= 3
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text


def test_split_cuts_chinese_at_full_stops():
    sentence = "我们的冷气清洗服务包括检查冷媒、清洁过滤网和排水管。"
    text = sentence * 400
    parts = split_for_telegram(text)
    assert len(parts) >= 2
    assert all(utf16_length(p) <= MAX_MESSAGE_CHARS and p.endswith("。") for p in parts)
    assert "".join(parts) == text


def test_split_counts_emoji_as_two_units():
    text = "👍🏽" * 3000  # 4 UTF-16 units each, 2 code points: fits by characters, not by Telegram's count
    parts = split_for_telegram(text)
    assert len(parts) >= 3
    assert all(utf16_length(p) <= MAX_MESSAGE_CHARS for p in parts)
    assert "".join(parts) == text


# ---------------------------------------------------------------------------- fidelity

HOSTILE = (
    "Use *promo* code _AIRCON_50_ [today] <b>only</b> & save 10% -> 1 < 2 > 0; "
    "a&b &amp; &lt;literal&gt; </i> `code` ~strike~ |spoiler| \\escaped\\ \"quoted\" 'single'."
)


async def test_markup_characters_arrive_exactly_as_written(fake, sender):
    receipt = await sender.send(part(HOSTILE))
    [sent] = fake.sent
    assert html.unescape(sent.raw_text) == HOSTILE
    assert sent.text == HOSTILE  # what Telegram shows after parsing the HTML
    assert sent.parse_mode == "HTML"
    assert receipt.provider_message_id == str(sent.message_id)


async def test_long_answer_full_of_markup_arrives_intact_in_parts(fake, sender):
    answer = " ".join(f"Step {i}: press <MODE> & [FAN] then *hold* _3s_." for i in range(300))
    pieces = split_for_telegram(answer)
    assert len(pieces) >= 2
    for index, piece in enumerate(pieces):
        await sender.send(part(piece, last_part=str(index == len(pieces) - 1).lower()))
    assert [s.text for s in fake.sent] == pieces
    assert " ".join(html.unescape(s.raw_text) for s in fake.sent) == answer
    assert [bool(s.reply_markup) for s in fake.sent] == [False] * (len(pieces) - 1) + [True]


# ---------------------------------------------------------------------------- keyboards

@pytest.mark.parametrize(("language", "label"), [("en", "Talk to a person"), ("zh", "联系真人客服"),
                                                 ("ms", "Bercakap dengan kakitangan"), ("ta", "ஊழியருடன் பேசு")])
async def test_answer_gets_feedback_and_human_buttons_in_its_language(fake, sender, language, label):
    await sender.send(part("Servicing costs $50 per unit.", language=language))
    [sent] = fake.sent
    assert buttons(sent.reply_markup) == [
        [("👍", f"fb:up:{INBOUND_ID}"), ("👎", f"fb:down:{INBOUND_ID}")],
        [(label, "human")],
    ]
    assert all(len(data.encode()) <= 64 for row in buttons(sent.reply_markup) for _, data in row)


async def test_no_default_keyboard_for_escalations_groups_or_unprompted_messages(fake, sender):
    fake.add_topic(STAFF, 1001)
    await sender.send(part("A colleague will reply shortly.", escalate="true"))
    await sender.send(part("New escalation from Mei Ling", recipient=STAFF, thread_id="1001"))
    await sender.send(part("Staff says: we'll be there at 3pm.", in_reply_to=None))
    await sender.send(part("Explicitly without buttons", keyboard="[]"))
    assert [s.reply_markup for s in fake.sent] == [None, None, None, None]
    assert fake.sent[1].thread_id == 1001


async def test_command_reply_keyboard_travels_in_metadata(fake, sender):
    reply = command_reply("language", language="ms", business_name="ChillPro")
    await sender.send(part(reply.text, **reply.metadata()))
    [sent] = fake.sent
    assert sent.text == reply.text
    assert buttons(sent.reply_markup) == [[("English", "lang:en"), ("中文", "lang:zh")],
                                          [("Bahasa Melayu", "lang:ms"), ("தமிழ்", "lang:ta")]]


async def test_malformed_keyboard_metadata_is_permanent_and_nothing_is_sent(fake, sender):
    with pytest.raises(PermanentChannelError) as info:
        await sender.send(part("hi", keyboard="{not json"))
    assert info.value.code == "bad_keyboard"
    assert fake.calls_to("sendMessage") == []


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("timedelta_env", ["1", None])
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_is_transient_and_the_callers_retry_sends_once(fake, sender, monkeypatch, timedelta_env):
    if timedelta_env is None:
        monkeypatch.delenv("PTB_TIMEDELTA")  # PTB 22 default: retry_after is an int
    fake.rate_limit_next(retry_after=7)
    with pytest.raises(TransientChannelError) as info:
        await sender.send(part("Your booking is confirmed."))
    assert info.value.retry_after == 7.0
    assert info.value.code == "rate_limited"
    assert isinstance(info.value.__cause__, Exception) and "Flood control" in str(info.value.__cause__)
    assert fake.sent == []  # the refused call delivered nothing and the sender did not retry by itself
    assert [c.status for c in fake.calls_to("sendMessage")] == [429]
    await sender.send(part("Your booking is confirmed."))  # the worker's retry after retry_after
    assert [s.text for s in fake.sent] == ["Your booking is confirmed."]
    assert [c.status for c in fake.calls_to("sendMessage")] == [429, 200]


async def test_blocked_user_is_recipient_unreachable(fake, sender):
    fake.block_chat(CUSTOMER)
    with pytest.raises(RecipientUnreachable) as info:
        await sender.send(part("Hello?"))
    assert info.value.code == "forbidden"
    assert not info.value.retryable
    assert fake.sent == []


async def test_deleted_forum_topic_is_topic_not_found(fake, sender):
    fake.add_topic(STAFF, 1001)
    await sender.send(part("first", recipient=STAFF, thread_id="1001"))
    fake.delete_topic(STAFF, 1001)
    with pytest.raises(TopicNotFound) as info:
        await sender.send(part("second", recipient=STAFF, thread_id="1001"))
    assert isinstance(info.value, PermanentChannelError)
    assert info.value.code == "topic_not_found"
    assert [s.text for s in fake.sent] == ["first"]


@pytest.mark.parametrize(
    ("script", "error", "code"),
    [
        # the request went out and the connection closed without an answer: Telegram may have it
        (lambda f: f.drop_next("sendMessage"), AmbiguousSendError, "no_response"),
        (lambda f: f.fail_next("sendMessage", status=502, description="Bad Gateway"), TransientChannelError,
         "network"),
        (lambda f: f.fail_next("sendMessage", status=400, description="Bad Request: chat not found"),
         RecipientUnreachable, "chat_not_found"),
        (lambda f: f.fail_next("sendMessage", status=400, description="Bad Request: message is too long"),
         PermanentChannelError, "bad_request"),
        (lambda f: f.fail_next("sendMessage", status=401, description="Unauthorized"), PermanentChannelError,
         "invalid_token"),
        (lambda f: f.fail_next("sendMessage", status=400, description="Bad Request: group chat was upgraded",
                               parameters={"migrate_to_chat_id": -1009}), ChatMigratedError, "chat_migrated"),
    ],
)
async def test_vendor_errors_map_to_channel_errors(fake, sender, script, error, code):
    script(fake)
    with pytest.raises(error) as info:
        await sender.send(part("Are you open on public holidays?"))
    assert type(info.value) is error
    assert info.value.code == code
    assert info.value.__cause__ is not None
    await sender.send(part("Are you open on public holidays?"))  # the fault was one-off: the next call works
    assert len(fake.sent) == 1


async def test_oversized_or_empty_part_is_refused_without_calling_telegram(fake, sender):
    with pytest.raises(PermanentChannelError) as too_long:
        await sender.send(part("x" * (MAX_MESSAGE_CHARS + 1)))
    assert too_long.value.code == "message_too_long"
    with pytest.raises(PermanentChannelError) as empty:
        await sender.send(part("   "))
    assert empty.value.code == "empty_message"
    with pytest.raises(PermanentChannelError) as bad_id:
        await sender.send(part("hi", recipient=0).model_copy(update={"recipient_id": "whatsapp:+65"}))
    assert bad_id.value.code == "bad_recipient"
    assert fake.calls_to("sendMessage") == []
    await sender.send(part("x" * MAX_MESSAGE_CHARS))  # exactly at the limit is fine
    assert len(fake.sent) == 1


# ---------------------------------------------------------------------------- other calls

async def test_typing_and_callback_answers(fake, sender):
    await sender.typing(CUSTOMER)
    await sender.answer_callback("cbq-123")
    [action] = fake.calls_to("sendChatAction")
    assert action.params == {"chat_id": CUSTOMER, "action": "typing"}
    assert fake.answered_callbacks == ["cbq-123"]
    fake.block_chat(CUSTOMER)
    with pytest.raises(RecipientUnreachable):
        await sender.typing(CUSTOMER)


async def test_a_callback_query_is_answered_once_and_within_200_characters(fake, sender):
    """A retried job answers the same press again: Telegram refuses it, and that means done."""
    await sender.answer_callback("cbq-9", "x" * 300)
    await sender.answer_callback("cbq-9", "again")

    assert [c.status for c in fake.calls_to("answerCallbackQuery")] == [200, 400]
    [(query_id, shown)] = fake.callback_answers
    assert query_id == "cbq-9" and len(shown) == 200 and shown.endswith("…")


async def test_set_commands_registers_every_language(fake, sender):
    await sender.set_commands()
    assert set(fake.commands) == {None, "zh", "ms", "ta"}
    for language_code, registered in fake.commands.items():
        expected = texts.command_descriptions(language_code or "en")
        assert [(c["command"], c["description"]) for c in registered] == expected
    assert fake.commands["zh"][2] == {"command": "human", "description": "联系真人客服"}


async def test_sends_to_one_chat_are_spaced_by_the_rate_limiter(fake):
    limits = TelegramLimits(private_chat=Bucket(rate=10.0), overall=Bucket(rate=1000.0))
    bot = build_bot(TEST_TOKEN, api_base_url=fake.url)
    async with bot:
        telegram = TelegramSender(bot, LocalRateLimiter(limits))
        for i in range(4):
            await telegram.send(part(f"part {i}", last_part="false"))
        await telegram.send(part("other chat", recipient=CUSTOMER + 1, last_part="false"))
    same_chat = [s.at for s in fake.sent_to(CUSTOMER)]
    gaps = [b - a for a, b in zip(same_chat, same_chat[1:])]
    assert len(gaps) == 3 and min(gaps) >= 0.09
    other = fake.sent_to(CUSTOMER + 1)[0].at
    assert other - same_chat[-1] < 0.09  # another chat is not held back by this chat's bucket


def test_keyboard_metadata_round_trips_as_json():
    reply = command_reply("language", language="en", business_name="X")
    assert json.loads(reply.metadata()["keyboard"])[0][0] == ["English", "lang:en"]


async def test_the_fake_refuses_unescaped_markup_like_telegram(fake):
    """Guards the fidelity tests above: they would fail if the sender stopped escaping."""
    async with build_bot(TEST_TOKEN, api_base_url=fake.url) as bot:
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):
            await bot.send_message(chat_id=CUSTOMER, text=HOSTILE, parse_mode="HTML")
    assert fake.sent == []
