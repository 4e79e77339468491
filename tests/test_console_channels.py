"""Console replies on the vendor channels, through the real SDKs against the local fakes.

A reply written in the console is the staff desk's message like one from the staff group:
it reaches a WhatsApp customer through Twilio (as a template once the 24-hour window has
closed) and a Telegram customer through the Bot API, and it is quoted in the ticket's topic
of the staff group, so the team sees what was sent from the console.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from escalation.models import TicketStatus
from memory.models import Contact
from supportlah.console.inbox import InboxFilter, InboxReader
from supportlah.console.replies import Actor, StaffAction, StaffActions
from tests.test_escalation_e2e import (  # noqa: F401  (fakes is a fixture used by name)
    CUSTOMER,
    STAFF_CHAT,
    TG_CUSTOMER,
    UNANSWERABLE,
    escalate_whatsapp,
    fakes,
    rig_for,
    settings_for,
)

pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

MEI = Actor(user_id="console:0123456789abcdef", name="Mei")
TEMPLATE = "HX" + "1" * 32


async def test_console_reply_after_24_hours_is_a_whatsapp_template_and_is_quoted_in_the_topic(
        backend, fakes, tmp_path: Path):  # noqa: F811
    telegram, twilio = fakes
    twilio.add_content(TEMPLATE, "Hello again from us: {{1}} Reply to continue the chat.")  # an approved template
    settings = settings_for({**backend.settings_kwargs, "data_dir": tmp_path / "data"}, telegram.url,
                            twilio.base_url, twilio_template_content_sid=TEMPLATE)
    async with rig_for(settings, telegram, twilio) as rig:
        thread_id = await escalate_whatsapp(rig)
        async with rig.container.store._sessions() as session:  # the customer last wrote 25 hours ago
            await session.execute(update(Contact).where(Contact.channel_user_id == CUSTOMER)
                                  .values(last_inbound_at=datetime.now(timezone.utc) - timedelta(hours=25)))
            await session.commit()
        actions = StaffActions(rig.container.ingress, rig.container.escalation.tickets)
        text = "Sorry for the late reply: the part has arrived."
        first = await actions.submit(1, StaffAction.REPLY, MEI, client_id="console-reply-1", text=text)
        again = await actions.submit(1, StaffAction.REPLY, MEI, client_id="console-reply-1", text=text)
        assert first is not None and again is not None and again.duplicate and again.message_id == first.message_id
        await rig.drain()
        await rig.drain()

        last = twilio.messages[-1]
        assert (last.to, last.content_sid) == (CUSTOMER, TEMPLATE)
        assert last.body == f"Hello again from us: {text} Reply to continue the chat."  # as Twilio renders it
        assert json.loads(last.content_variables) == {"1": text}
        assert len(twilio.messages) == 2  # the hand-off text, then this reply once
        quoted = [post for post in rig.staff_posts(thread_id) if post.text.startswith("💬 Mei (console)")]
        assert [post.text for post in quoted] == [f"💬 Mei (console): {text}"]
        ticket = await rig.ticket()
        assert ticket.status == TicketStatus.WAITING_CUSTOMER and ticket.assignee_id == MEI.user_id

        await rig.staff_says("Team: who is on duty tomorrow?", thread_id=None)  # chatter in the staff group
        await rig.drain()
        rows = await InboxReader(rig.container.privacy.sessions, staff_chat_id=STAFF_CHAT).rows(
            InboxFilter(), actor_id=MEI.user_id)
        assert [row.channel for row in rows] == ["whatsapp"]  # the staff group's own chat is no customer
        assert len(await InboxReader(rig.container.privacy.sessions).rows(InboxFilter(), actor_id="")) == 2

        await actions.submit(1, StaffAction.NOTE, MEI, client_id="console-note-1", text="Part no. 4471")
        await rig.drain()
        assert len(twilio.messages) == 2  # a note never reaches the customer
        assert any("Part no. 4471" in post.text and "not sent to the customer" in post.text
                   for post in rig.staff_posts(thread_id))


async def test_console_reply_reaches_a_telegram_customer_and_the_topic(fakes, tmp_path: Path):  # noqa: F811
    telegram, twilio = fakes
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url)
    async with rig_for(settings, telegram, twilio) as rig:
        await rig.tg(rig.updates.text(TG_CUSTOMER, UNANSWERABLE))
        await rig.drain()
        [(_chat, _name)] = rig.topics_created()
        thread_id = rig.staff_posts()[0].thread_id
        actions = StaffActions(rig.container.ingress, rig.container.escalation.tickets)
        await actions.submit(1, StaffAction.CLAIM, MEI, client_id="console-claim-1")
        await actions.submit(1, StaffAction.REPLY, MEI, client_id="console-reply-2",
                             text="Hello from the console <b>team</b>")
        await rig.drain()
        to_customer = [m.text for m in rig.telegram.sent_to(TG_CUSTOMER)]
        assert to_customer[-1] == "Hello from the console <b>team</b>" and len(to_customer) == 2
        assert any(post.text == "💬 Mei (console): Hello from the console <b>team</b>"
                   for post in rig.staff_posts(thread_id))
        await actions.submit(1, StaffAction.RESOLVE, MEI, client_id="console-resolve-1")
        await rig.drain()
        assert (await rig.ticket()).status == TicketStatus.RESOLVED
        assert any("Resolved by Mei" in post.text for post in rig.staff_posts(thread_id))


async def test_a_console_reply_that_cannot_be_delivered_says_why(fakes, tmp_path: Path):  # noqa: F811
    telegram, twilio = fakes
    settings = settings_for({"data_dir": tmp_path / "data"}, telegram.url, twilio.base_url)  # no template
    async with rig_for(settings, telegram, twilio) as rig:
        thread_id = await escalate_whatsapp(rig)
        async with rig.container.store._sessions() as session:
            await session.execute(update(Contact).where(Contact.channel_user_id == CUSTOMER)
                                  .values(last_inbound_at=datetime.now(timezone.utc) - timedelta(hours=30)))
            await session.commit()
        actions = StaffActions(rig.container.ingress, rig.container.escalation.tickets)
        await actions.submit(1, StaffAction.REPLY, MEI, client_id="console-reply-late", text="Are you still there?")
        await rig.drain()
        ticket = await rig.ticket()
        view = await InboxReader(rig.container.privacy.sessions).conversation(ticket.conversation_id)
        [late] = [entry for entry in view.entries if entry.text == "Are you still there?"]
        assert late.state == "failed" and "24-hour window is closed" in (late.error or "")
        assert rig.staff_posts(thread_id)[-1].text.startswith("⚠️ Not delivered to the customer")
