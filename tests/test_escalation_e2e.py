"""Staff hand-off end to end: real processor, real PTB Bot and twilio SDK against the local fakes.

Customers write through the real Twilio and Telegram webhook handlers (or the web-chat
ingress); staff act by sending Telegram updates from the staff group through the same
Telegram webhook. What reaches customers is read back from the fakes.
"""
from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from channels.messages import Channel, utcnow
from channels.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from config.settings import Settings, load_settings
from config.hours import DAYS, BusinessHours
from escalation.models import TicketStatus
from escalation.texts import expected_reply
from memory.models import Contact
from supportlah.container import Container
from supportlah.escalation_wiring import escalation_routes, sla_reminders
from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.harness import SentEvents, drain, running_container, web_message

pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "escalation-auth-token"
PUBLIC_URL = "https://help.example.sg"
BUSINESS_NUMBER = "whatsapp:+6560001111"
CUSTOMER = "whatsapp:+6591234567"
SECRET = "escalation-webhook-secret"
STAFF_CHAT = -1001234567890
ALICE, MALLORY = 9001, 6666
TG_CUSTOMER = 424242
UNANSWERABLE = "Do you restore antique grandfather clocks from the 1800s?"


@dataclass
class Rig:
    container: Container
    telegram: FakeTelegramAPI
    twilio: FakeTwilioApi
    client: TestClient
    updates: UpdateFactory = field(default_factory=UpdateFactory)

    async def drain(self) -> None:
        await drain(self.container, timeout=120)

    async def tg(self, payload: dict) -> None:
        response = await self.client.post(WEBHOOK_PATH, data=json.dumps(payload),
                                          headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})
        assert response.status == 200, await response.text()

    async def whatsapp(self, body: str, sid: str, sender: str = CUSTOMER) -> None:
        form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "To": BUSINESS_NUMBER, "Body": body,
                "NumMedia": "0", "ProfileName": "Mei Ling", "WaId": sender.split("+")[-1]}
        path = "/webhooks/twilio/whatsapp"
        signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + path, form)
        response = await self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status == 200, await response.text()

    async def staff_says(self, text: str, *, thread_id: int | None, user_id: int = ALICE, **content) -> dict:
        payload = self.updates.message(STAFF_CHAT, user_id=user_id, thread_id=thread_id, text=text,
                                       **{"from": self.updates.user(user_id, "Alice", "Lim")}, **content)
        await self.tg(payload)
        return payload["message"]

    async def press(self, data: str, *, user_id: int = ALICE, message_id: int = 1) -> str:
        payload = self.updates.callback(STAFF_CHAT, data, user_id=user_id, first_name="Alice", message_id=message_id)
        await self.tg(payload)
        return payload["callback_query"]["id"]

    def staff_posts(self, thread_id: int | None = None) -> list:
        return [m for m in self.telegram.sent_to(STAFF_CHAT) if thread_id is None or m.thread_id == thread_id]

    def topics_created(self) -> list[tuple[int, str]]:
        return [(c.params["chat_id"], c.params["name"]) for c in self.telegram.calls_to("createForumTopic")
                if c.status == 200]

    async def ticket(self, number: int = 1):
        return await self.container.escalation.tickets.by_number(number)


def settings_for(base: dict, telegram_url: str, twilio_url: str, **overrides) -> Settings:
    values = dict(
        public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=BUSINESS_NUMBER, twilio_api_base_url=twilio_url,
        telegram_bot_token=TEST_TOKEN, telegram_api_base_url=telegram_url, telegram_webhook_secret=SECRET,
        staff_chat_id=STAFF_CHAT, telegram_private_chat_per_second=1000.0, telegram_group_chat_per_minute=60000.0,
        telegram_overall_per_second=1000.0, business_hours="daily 00:00-24:00", escalation_ai_suggestions=False,
        pdpa_consent_mode="off",  # the privacy notice is another feature's message; keep counts to ours
    )
    values.update(base)
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@asynccontextmanager
async def rig_for(settings: Settings, telegram: FakeTelegramAPI, twilio: FakeTwilioApi):
    async with running_container(settings, start_queue=False) as container:
        app = web.Application()
        app.add_routes(container.telegram.webhook(container.ingress).routes())
        app.add_routes(container.twilio.webhooks(container.ingress, container.deliveries).routes())
        app.add_routes(escalation_routes(container.escalation))
        async with TestClient(TestServer(app)) as client:
            twilio.route_callbacks(PUBLIC_URL, str(client.make_url("")))  # Twilio's status callbacks reach us
            yield Rig(container, telegram, twilio, client)
            await twilio.settle()
    assert telegram.errors == [] and twilio.errors == []


@pytest.fixture
async def fakes():
    twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    async with FakeTelegramAPI() as telegram:
        yield telegram, twilio
    await twilio.stop()


@pytest.fixture
async def rig(fakes, tmp_path: Path):
    telegram, twilio = fakes
    async with rig_for(settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url),
                       telegram, twilio) as built:
        yield built


async def escalate_whatsapp(rig: Rig) -> int:
    """A WhatsApp customer asks what the knowledge base cannot answer; returns the new topic's thread id."""
    await rig.whatsapp(UNANSWERABLE, "SM" + "a" * 32)
    await rig.drain()
    [(chat_id, name)] = rig.topics_created()
    assert chat_id == STAFF_CHAT and name == "#1 · WhatsApp · Mei Ling"
    [card] = rig.staff_posts()
    return card.thread_id


# ---------------------------------------------------------------------- the three channels
async def test_whatsapp_customer_is_answered_by_staff_exactly_once(backend, fakes):
    telegram, twilio = fakes
    settings = settings_for(backend.settings_kwargs, telegram.url, twilio.base_url)
    async with rig_for(settings, telegram, twilio) as rig:
        thread_id = await escalate_whatsapp(rig)
        assert [m.to for m in twilio.messages] == [CUSTOMER]  # the hand-off text
        [card] = rig.staff_posts(thread_id)
        assert "Ticket #1 · WhatsApp · Mei Ling" in card.text and "low confidence" in card.text
        assert UNANSWERABLE in card.text  # last messages
        buttons = [b["text"] for row in card.reply_markup["inline_keyboard"] for b in row]
        assert buttons == ["✋ Claim", "✅ Resolve", "🤖 Return to bot"]  # no draft: the KB is empty
        ticket = await rig.ticket()
        assert (ticket.status, ticket.reason, ticket.channel) == (TicketStatus.OPEN, "low_confidence", "whatsapp")

        staff_message = await rig.staff_says("Hi Mei Ling, yes we restore antique clocks.", thread_id=thread_id)
        await rig.drain()
        await rig.drain()  # a second pass sends nothing again

        relayed = [m for m in twilio.messages if m.body == "Hi Mei Ling, yes we restore antique clocks."]
        assert len(relayed) == 1 and relayed[0].to == CUSTOMER and len(twilio.messages) == 2
        assert telegram.reactions == [{"chat_id": STAFF_CHAT, "message_id": staff_message["message_id"],
                                       "emoji": ["👌"]}]
        ticket = await rig.ticket()
        assert ticket.status == TicketStatus.WAITING_CUSTOMER and ticket.assignee_name == "Alice Lim"
        transcript = await rig.container.store.transcript(ticket.conversation_id)
        assert [item["role"] for item in transcript] == ["user", "assistant", "staff"]


async def test_telegram_customer_gets_staff_text_and_photo_and_staff_see_theirs(rig):
    await rig.tg(rig.updates.text(TG_CUSTOMER, UNANSWERABLE))
    await rig.drain()
    [(_, name)] = rig.topics_created()
    assert name == "#1 · Telegram · Mei Ling Tan"
    [card] = rig.staff_posts()
    thread_id = card.thread_id
    assert len(rig.telegram.sent_to(TG_CUSTOMER)) == 1  # the hand-off text

    await rig.staff_says("We can have a look at it on Monday.", thread_id=thread_id)
    photo = rig.updates.photo(STAFF_CHAT, caption="This is the part we would replace", user_id=ALICE,
                              thread_id=thread_id)
    await rig.tg(photo)
    await rig.drain()
    to_customer = rig.telegram.sent_to(TG_CUSTOMER)
    assert [m.text for m in to_customer[1:]] == ["We can have a look at it on Monday."]
    assert to_customer[1].reply_markup is None  # no 👍/👎 under a person's message
    [copy] = [c for c in rig.telegram.copies if c["chat_id"] == TG_CUSTOMER]
    assert (copy["from_chat_id"], copy["message_id"]) == (STAFF_CHAT, photo["message"]["message_id"])
    assert len(rig.telegram.reactions) == 2  # both confirmed

    # Human mode: the customer's photo goes to the topic, the AI stays quiet.
    customer_photo = rig.updates.photo(TG_CUSTOMER, caption="Like this one?")
    await rig.tg(customer_photo)
    await rig.drain()
    assert len(rig.telegram.sent_to(TG_CUSTOMER)) == 2
    [into_topic] = [c for c in rig.telegram.copies if c["chat_id"] == STAFF_CHAT]
    assert (into_topic["from_chat_id"], into_topic["thread_id"]) == (TG_CUSTOMER, thread_id)
    assert into_topic["message_id"] == customer_photo["message"]["message_id"]


async def test_web_chat_customer_gets_the_staff_reply_live_and_in_history(rig):
    sent = SentEvents()
    sent.attach(rig.container, "visitor-esc-01")
    await rig.container.ingress.accept(web_message("visitor-esc-01", UNANSWERABLE))
    await rig.drain()
    [card] = rig.staff_posts()
    assert "Web chat" in card.text
    await rig.staff_says("Hello! A technician will call you today.", thread_id=card.thread_id)
    await rig.drain()
    staff_replies = [e for e in sent.replies("visitor-esc-01") if e["role"] == "staff"]
    assert [e["text"] for e in staff_replies] == ["Hello! A technician will call you today."]
    conversation_id = await rig.container.store.conversation_for(Channel.WEB, "visitor-esc-01")
    history = await rig.container.store.transcript(conversation_id)
    assert [i["role"] for i in history] == ["user", "assistant", "staff"]  # staff-group posts never show
    assert len(rig.telegram.reactions) == 1


async def test_a_deleted_topic_is_recreated_on_the_next_message(rig):
    thread_id = await escalate_whatsapp(rig)
    rig.telegram.delete_topic(STAFF_CHAT, thread_id)
    await rig.whatsapp("Hello? Is anyone there?", "SM" + "b" * 32)
    await rig.drain()
    topics = rig.topics_created()
    assert len(topics) == 2 and topics[1][1] == "#1 · WhatsApp · Mei Ling"
    new_thread = (await rig.container.escalation.tickets.topic_for((await rig.ticket()).conversation_id)).thread_id
    assert new_thread != thread_id
    [forward] = rig.staff_posts(new_thread)
    assert forward.text == "👤 Mei Ling: Hello? Is anyone there?"
    assert len(rig.twilio.messages) == 1, "human mode: the AI did not answer"
    events = [e.kind for e in await rig.container.escalation.tickets.events((await rig.ticket()).id)]
    assert "topic_recreated" in events
    await rig.staff_says("Yes, sorry for the wait!", thread_id=new_thread)
    await rig.drain()
    assert rig.twilio.messages[-1].body == "Yes, sorry for the wait!"


async def test_notes_stay_internal_and_commands_end_human_mode(rig):
    thread_id = await escalate_whatsapp(rig)
    note = await rig.staff_says("/note Customer called twice yesterday", thread_id=thread_id)
    await rig.drain()
    assert len(rig.twilio.messages) == 1, "a note is never sent to the customer"
    assert rig.telegram.reactions == [{"chat_id": STAFF_CHAT, "message_id": note["message_id"], "emoji": ["✍"]}]
    ticket = await rig.ticket()
    events = await rig.container.escalation.tickets.events(ticket.id)
    assert [(e.kind, e.detail) for e in events if e.kind == "note"] == [("note", "Customer called twice yesterday")]

    await rig.staff_says("/bot", thread_id=thread_id)
    await rig.drain()
    assert rig.twilio.messages[-1].body.startswith("You're chatting with our virtual assistant again")
    ticket = await rig.ticket()
    assert ticket.status == TicketStatus.RESOLVED
    card = rig.telegram.sent_to(STAFF_CHAT)[0]
    assert "resolved by Alice Lim" in card.text  # the card was edited

    # The bot answers again; it cannot (empty knowledge base), so the recent ticket is reopened.
    await rig.whatsapp("What are your opening hours?", "SM" + "c" * 32)
    await rig.drain()
    assert rig.twilio.messages[-1].body.startswith("I'm not certain about this one")
    ticket = await rig.ticket()
    assert ticket.status == TicketStatus.OPEN and ticket.number == 1
    assert "reopened" in [e.kind for e in await rig.container.escalation.tickets.events(ticket.id)]
    new_card = rig.staff_posts(thread_id)[-1]
    assert new_card.text.startswith("Ticket #1") and "What are your opening hours?" in new_card.text


async def test_buttons_claim_and_resolve_and_strangers_cannot_act(fakes, tmp_path):
    telegram, twilio = fakes
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url, staff_user_ids=[ALICE])
    async with rig_for(settings, telegram, twilio) as rig:
        thread_id = await escalate_whatsapp(rig)
        card = rig.staff_posts()[0]
        # Someone in the group but not on the allow-list: cannot claim, cannot reply.
        refused = await rig.press("esc:claim:1", user_id=MALLORY, message_id=card.message_id)
        await rig.staff_says("I'll take this one", thread_id=thread_id, user_id=MALLORY)
        # A customer in a private chat cannot act on tickets either.
        await rig.tg(rig.updates.callback(TG_CUSTOMER, "esc:resolve:1"))
        await rig.tg(rig.updates.text(TG_CUSTOMER, "#1 hello from outside"))
        await rig.drain()
        assert (await rig.ticket()).status == TicketStatus.OPEN
        assert len(twilio.messages) == 1, "nothing reached the WhatsApp customer"
        assert (refused, "Only the support team can act on tickets.") in telegram.callback_answers

        pressed = await rig.press("esc:claim:1", message_id=card.message_id)
        await rig.drain()
        ticket = await rig.ticket()
        assert (ticket.status, ticket.assignee_name) == (TicketStatus.CLAIMED, "Alice Tan")
        assert "claimed by Alice Tan" in rig.staff_posts()[0].text
        assert (pressed, "You have ticket #1.") in telegram.callback_answers

        await rig.press("esc:resolve:1", message_id=card.message_id)
        await rig.drain()
        assert (await rig.ticket()).status == TicketStatus.RESOLVED
        assert twilio.messages[-1].body.startswith("Our team has marked your request as resolved")
        buttons = [b["text"] for row in rig.staff_posts()[0].reply_markup["inline_keyboard"] for b in row]
        assert buttons == ["↩️ Reopen"]


async def test_out_of_hours_customer_is_told_when_to_expect_a_reply(fakes, tmp_path):
    telegram, twilio = fakes
    now = utcnow()
    hours = BusinessHours.parse("daily 00:00-24:00", time_zone="Asia/Singapore")
    tomorrow = (hours.local(now) + timedelta(days=1)).weekday()
    spec = f"{DAYS[tomorrow]} 09:00-18:00"  # open only tomorrow: closed right now
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url, business_hours=spec)
    async with rig_for(settings, telegram, twilio) as rig:
        await rig.whatsapp(UNANSWERABLE, "SM" + "d" * 32)
        await rig.drain()
        opening = BusinessHours.parse(spec, time_zone="Asia/Singapore")
        expected = expected_reply(opening.local(opening.next_open(now)), opening.local(now), "en")
        assert "tomorrow at 9:00 am" in expected
        assert [m.body for m in twilio.messages][-1] == expected
        assert "Outside business hours" in rig.staff_posts()[0].text
        ticket = await rig.ticket()
        assert opening.local(ticket.sla_due_at).strftime("%H:%M") == "10:00"  # 60 staffed minutes after opening


async def test_a_multi_line_staff_reply_after_24_hours_goes_out_as_a_template(fakes, tmp_path):
    """Twilio refuses a template variable with a newline (21656); staff replies are multi-line."""
    telegram, twilio = fakes
    twilio.add_content("HX" + "1" * 32, "Hello again from Kool Aircon: {{1}} Reply to continue the chat.")
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url,
                            twilio_template_content_sid="HX" + "1" * 32)
    async with rig_for(settings, telegram, twilio) as rig:
        thread_id = await escalate_whatsapp(rig)
        async with rig.container.store._sessions() as session:  # the customer last wrote 25 hours ago
            await session.execute(update(Contact).where(Contact.channel_user_id == CUSTOMER)
                                  .values(last_inbound_at=datetime.now(timezone.utc) - timedelta(hours=25)))
            await session.commit()
        await rig.staff_says("Sorry for the late reply.\n\nThe part has arrived:\n- compressor\n- fan",
                             thread_id=thread_id)
        await rig.drain()
        last = twilio.messages[-1]
        assert (last.content_sid, last.answered) == ("HX" + "1" * 32, 201)
        assert json.loads(last.content_variables) == {"1": "Sorry for the late reply. The part has arrived: - "
                                                           "compressor - fan"}
        assert len(twilio.messages) == 2 and len(telegram.reactions) == 1


async def test_provider_says_the_window_is_closed_and_no_template_staff_are_told(rig):
    """We thought the window open; Twilio accepted the staff reply and reported 63016 later.
    With no template configured, the topic says the reply did not arrive and why."""
    thread_id = await escalate_whatsapp(rig)
    await rig.twilio.settle()
    rig.twilio.close_window(CUSTOMER)
    await rig.staff_says("Are you still there?", thread_id=thread_id)
    await rig.drain()
    await rig.twilio.settle()
    await rig.drain()

    relayed = rig.twilio.messages[-1]
    assert (relayed.body, relayed.answered, relayed.error_code) == ("Are you still there?", 201, 63016)
    warning = rig.staff_posts(thread_id)[-1]
    assert warning.text.startswith("⚠️ Not delivered to the customer: WhatsApp's 24-hour window is closed (63016)")
    await rig.drain()
    assert rig.staff_posts(thread_id)[-1].message_id == warning.message_id, "told once"
    events = await rig.container.escalation.tickets.events((await rig.ticket()).id)
    assert "delivery_failed" in [event.kind for event in events]


async def test_a_failed_delivery_is_shown_in_the_topic(rig):
    thread_id = await escalate_whatsapp(rig)
    async with rig.container.store._sessions() as session:
        await session.execute(update(Contact).where(Contact.channel_user_id == CUSTOMER)
                              .values(last_inbound_at=datetime.now(timezone.utc) - timedelta(hours=30)))
        await session.commit()
    await rig.staff_says("Are you still there?", thread_id=thread_id)
    await rig.drain()
    assert len(rig.twilio.messages) == 1 and rig.telegram.reactions == []
    warning = rig.staff_posts(thread_id)[-1]
    assert warning.text.startswith("⚠️ Not delivered to the customer: WhatsApp's 24-hour window is closed")


async def test_a_staff_group_that_became_a_supergroup_keeps_working(rig):
    """Turning on Topics converts the group: calls to the old id answer 400 migrate_to_chat_id and
    updates come from the new id. We follow, post one notice, keep relaying, and remember it."""
    new_chat = -1009999999999
    thread_id = await escalate_whatsapp(rig)
    rig.telegram.migrate_chat(STAFF_CHAT, new_chat)

    await rig.whatsapp("Hello? Anyone there?", "SM" + "b" * 32)  # human mode: forwarded to the topic
    await rig.drain()
    moved = rig.telegram.sent_to(new_chat)
    assert [m.text for m in moved if m.thread_id is None] == [
        "ℹ️ This group became a supergroup (Telegram gave it a new id); the assistant keeps posting here."]
    assert [m.text for m in moved if m.thread_id == thread_id] == ["👤 Mei Ling: Hello? Anyone there?"]
    refused = [c for c in rig.telegram.calls if c.status == 400]
    assert len(refused) == 1, "one refused call, then every call goes to the new id"

    payload = rig.updates.message(new_chat, user_id=ALICE, thread_id=thread_id, text="Yes, we are here.",
                                  **{"from": rig.updates.user(ALICE, "Alice", "Lim")})
    await rig.tg(payload)
    await rig.drain()
    assert rig.twilio.messages[-1].body == "Yes, we are here."
    assert rig.telegram.reactions[-1]["chat_id"] == new_chat
    assert await rig.container.store.chat_moved_to(STAFF_CHAT) == new_chat
    assert (await rig.container.escalation.tickets.topic_for((await rig.ticket()).conversation_id)).chat_id == new_chat

    await rig.whatsapp("Great, thanks", "SM" + "c" * 32)
    await rig.drain()
    assert len([m for m in rig.telegram.sent_to(new_chat) if m.thread_id is None]) == 1, "one notice"


async def test_without_topics_staff_reply_to_the_card(fakes, tmp_path):
    telegram, twilio = fakes
    telegram.disable_topics(STAFF_CHAT)
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url)
    async with rig_for(settings, telegram, twilio) as rig:
        await rig.whatsapp(UNANSWERABLE, "SM" + "e" * 32)
        await rig.drain()
        [card] = rig.staff_posts()
        assert card.thread_id is None and "reply to this card, or start with #1" in card.text
        await rig.staff_says("Replying to the card works.", thread_id=None,
                             reply_to_message={"message_id": card.message_id, "date": rig.updates.now,
                                               "chat": rig.updates.chat(STAFF_CHAT), "text": card.text})
        await rig.staff_says("#1 And so does the ticket number.", thread_id=None)
        await rig.whatsapp("Thanks, one more question", "SM" + "f" * 32)
        await rig.drain()
        assert [m.body for m in twilio.messages[1:]] == ["Replying to the card works.",
                                                         "And so does the ticket number."]
        forward = rig.staff_posts()[-1]
        assert forward.text == "👤 Mei Ling: Thanks, one more question"
        reply_to = telegram.calls_to("sendMessage")[-1].params["reply_parameters"]
        assert reply_to["message_id"] == card.message_id


async def test_sla_reminder_pings_the_topic_and_the_owner_once(rig):
    thread_id = await escalate_whatsapp(rig)
    await rig.press("esc:claim:1", message_id=rig.staff_posts()[0].message_id)
    await rig.drain()
    ticket = await rig.ticket()
    await rig.container.escalation.tickets.update(ticket.id, sla_due_at=utcnow() - timedelta(minutes=5))
    assert await sla_reminders(rig.container) == 1
    assert await sla_reminders(rig.container) == 0, "not again before the repeat interval"
    reminder = rig.staff_posts(thread_id)[-1]
    assert reminder.text.startswith("⏰ Ticket #1 (normal) is still waiting for a reply")
    assert reminder.text.endswith("Alice Tan has it. Alice Tan")  # the mention, rendered
    assert f'<a href="tg://user?id={ALICE}">Alice Tan</a>' in reminder.raw_text
    events = [e.kind for e in await rig.container.escalation.tickets.events(ticket.id)]
    assert events.count("sla_reminder") == 1


KB = """OPENING HOURS

Office, hotline and WhatsApp: Monday to Saturday, 9am to 6pm.
Closed on Sundays and public holidays.

SERVICE ZONES AND TRANSPORT FEES

West zone: Jurong East, Jurong West, Clementi, Bukit Batok, Boon Lay.
Transport fee: $10 per visit.
"""


async def test_two_thumbs_down_hand_over_with_the_ai_draft_one_press_away(fakes, tmp_path):
    telegram, twilio = fakes
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url,
                            escalation_ai_suggestions=True)
    async with rig_for(settings, telegram, twilio) as rig:
        (tmp_path / "hours-and-zones.txt").write_text(KB)
        await rig.container.ingestor.ingest([tmp_path / "hours-and-zones.txt"])
        questions = ["What are your opening hours?", "What is the transport fee for Jurong East?"]
        for question in questions:
            rig.updates.now += 60
            await rig.tg(rig.updates.text(TG_CUSTOMER, question))
            await rig.drain()
            conversation_id = await rig.container.store.conversation_for(Channel.TELEGRAM, str(TG_CUSTOMER))
            answered = [i for i in await rig.container.store.transcript(conversation_id) if i["role"] == "user"]
            answer = rig.telegram.sent_to(TG_CUSTOMER)[-1]
            assert answer.reply_markup is not None, "a confident answer carries 👍/👎"
            await rig.tg(rig.updates.callback(TG_CUSTOMER, f"fb:down:{answered[-1]['message_id']}"))
            await rig.drain()
        assert rig.telegram.sent_to(TG_CUSTOMER)[-1].text.startswith("Sorry my answers haven't helped")
        ticket = await rig.ticket()
        assert ticket.reason == "unsatisfied" and ticket.draft_text and "$10" in ticket.draft_text
        [card] = rig.staff_posts()
        assert "Reason: unsatisfied" in card.text and "AI draft:" in card.text and "hours-and-zones.txt" in card.text

        await rig.press("esc:draft:1", message_id=card.message_id)
        await rig.drain()
        assert rig.telegram.sent_to(TG_CUSTOMER)[-1].text == ticket.draft_text
        assert rig.staff_posts(card.thread_id)[-1].text == "📤 AI draft sent to the customer by Alice Tan"
        assert (await rig.ticket()).status == TicketStatus.WAITING_CUSTOMER

        # In human mode the AI only suggests, to staff.
        before = len(rig.telegram.sent_to(TG_CUSTOMER))
        await rig.tg(rig.updates.text(TG_CUSTOMER, "Are you open on Sundays?"))
        await rig.drain()
        assert len(rig.telegram.sent_to(TG_CUSTOMER)) == before
        forward, suggestion = rig.staff_posts(card.thread_id)[-2:]
        assert forward.text == "👤 Mei Ling Tan: Are you open on Sundays?"
        assert suggestion.text.startswith("🤖 Suggested answer (only staff see this):")
        assert suggestion.reply_markup["inline_keyboard"][0][0]["callback_data"] == "esc:draft:1"
        assert (await rig.ticket()).status == TicketStatus.CLAIMED  # the customer answered: back with staff


async def test_a_malay_customer_asking_for_a_person_is_told_in_malay_when_staff_finish(rig):
    await rig.tg(rig.updates.text(TG_CUSTOMER, "/language ms", language_code="ms"))
    await rig.tg(rig.updates.callback(TG_CUSTOMER, "human", language_code="ms"))  # the "Talk to a person" button
    await rig.drain()
    ticket = await rig.ticket()
    assert (ticket.reason, ticket.language) == ("customer_request", "ms")
    [card] = rig.staff_posts()
    assert "Language: Malay" in card.text
    await rig.press("esc:bot:1", message_id=card.message_id)
    await rig.drain()
    assert rig.telegram.sent_to(TG_CUSTOMER)[-1].text.startswith("Anda kini berbual semula dengan pembantu maya")
    assert (await rig.ticket()).status == TicketStatus.RESOLVED


async def test_a_staff_document_reaches_whatsapp_as_a_signed_link(rig):
    thread_id = await escalate_whatsapp(rig)
    rig.telegram.add_file("doc-quotation.pdf", b"%PDF-1.4 quotation", "documents/quotation.pdf")
    document = rig.updates.document(STAFF_CHAT, file_name="quotation.pdf", user_id=ALICE, thread_id=thread_id,
                                    caption="Here is your quotation")
    await rig.tg(document)
    await rig.drain()
    body = rig.twilio.messages[-1].body
    caption, link = body.split("\n")
    assert caption == "Here is your quotation" and link.startswith(f"📎 {PUBLIC_URL}/media/staff/")
    response = await rig.client.get(link.removeprefix(f"📎 {PUBLIC_URL}"))
    assert response.status == 200 and await response.read() == b"%PDF-1.4 quotation"
    assert TEST_TOKEN not in body and len(rig.telegram.reactions) == 1


async def test_a_mistyped_command_is_not_sent_to_the_customer(rig):
    thread_id = await escalate_whatsapp(rig)
    await rig.staff_says("/clsoe", thread_id=thread_id)
    await rig.drain()
    assert len(rig.twilio.messages) == 1
    assert rig.staff_posts(thread_id)[-1].text.startswith("ℹ️ Not sent: unknown command. Commands here: /note")
