"""PDPA notice and consent in the real pipeline: notice mode, opt-in mode, and the customer's own data requests."""
from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from memory.models import InboundMessageRow
from memory.pdpa import ConsentRecord
from tests.harness import SentEvents, drain, running_container, web_message


async def _say(container, visitor: str, text: str) -> str:
    result = await container.ingress.accept(web_message(visitor, text))
    await drain(container)
    return result.message_id


async def _consents(container, contact_id: str) -> list[ConsentRecord]:
    async with container.privacy.sessions() as session:
        return list(await session.scalars(
            select(ConsentRecord).where(ConsentRecord.contact_id == contact_id).order_by(ConsentRecord.created_at)
        ))


async def test_notice_mode_sends_the_notice_once_before_the_first_answer(backend):
    settings = backend.settings(pdpa_consent_mode="notice", pdpa_policy_url="https://example.com/privacy",
                                pdpa_notice_version="2025-01")
    async with running_container(settings, start_queue=False) as container:
        sent = SentEvents()
        sent.attach(container, "visitor-notice-1")
        first = await _say(container, "visitor-notice-1", "How much is a chemical wash?")
        second = await _say(container, "visitor-notice-1", "And for two units?")
        await asyncio.sleep(0.2)  # production: events cross Redis pub/sub

        parts = await container.store.parts_for(first)
        assert parts[0].role == "system" and "Privacy notice" in parts[0].text
        assert "https://example.com/privacy" in parts[0].text
        assert [p.role for p in parts[1:]] == ["assistant"] * (len(parts) - 1)
        assert all(p.role != "system" for p in await container.store.parts_for(second))
        events = sent.replies("visitor-notice-1")
        assert events[0]["role"] == "system" and events[0]["message_id"] == first  # the notice went out first

        stored = await container.store.load(first)
        [record] = await _consents(container, stored.contact_id)
        assert (record.status, record.mode, record.notice_version, record.channel) == (
            "notified", "notice", "2025-01", "web")
        assert record.message_id == first and record.created_at is not None


async def test_a_new_notice_version_is_shown_again_once(backend):
    settings = backend.settings(pdpa_consent_mode="notice", pdpa_notice_version="1")
    async with running_container(settings, start_queue=False) as container:
        first = await _say(container, "visitor-notice-2", "hello there")
    settings = backend.settings(pdpa_consent_mode="notice", pdpa_notice_version="2")
    async with running_container(settings, start_queue=False) as container:
        again = await _say(container, "visitor-notice-2", "are you open on Sunday?")
        later = await _say(container, "visitor-notice-2", "thanks")
        assert [p.role for p in await container.store.parts_for(again)][0] == "system"
        assert all(p.role != "system" for p in await container.store.parts_for(later))
        contact_id = (await container.store.load(first)).contact_id
        assert [(r.notice_version, r.status) for r in await _consents(container, contact_id)] == [
            ("1", "notified"), ("2", "notified")]


async def test_opt_in_processes_nothing_until_the_customer_agrees(backend):
    settings = backend.settings(pdpa_consent_mode="opt-in")
    async with running_container(settings, start_queue=False) as container:
        held = await _say(container, "visitor-optin-1", "My aircon at Blk 123 is leaking")
        reply = await container.store.get_reply(held)
        assert reply.backend["answerer"] == "pdpa:consent" and "AGREE" in reply.text
        parts = await container.store.parts_for(held)
        assert len(parts) == 1 and json.loads(parts[0].meta["keyboard"])[0][0][1] == "pdpa:agree"
        async with container.privacy.sessions() as session:
            row = await session.get(InboundMessageRow, held)
            assert row.text == ""  # what was written before consent is not kept

        ignored = await _say(container, "visitor-optin-1", "hello??")
        assert (await container.store.get_reply(ignored)).backend["answerer"] == "pdpa:consent"

        agreed = await _say(container, "visitor-optin-1", "I agree")
        assert (await container.store.get_reply(agreed)).backend["answerer"] == "pdpa:consent"
        answered = await _say(container, "visitor-optin-1", "Do you service Daikin units?")
        assert (await container.store.get_reply(answered)).backend.get("answerer") != "pdpa:consent"

        contact_id = (await container.store.load(held)).contact_id
        assert [r.status for r in await _consents(container, contact_id)] == ["pending", "agreed"]


async def test_opt_in_button_press_and_decline(backend):
    settings = backend.settings(pdpa_consent_mode="opt-in")
    async with running_container(settings, start_queue=False) as container:
        await _say(container, "visitor-optin-2", "hi")
        declined = await _say(container, "visitor-optin-2", "no")
        assert "won't process" in (await container.store.get_reply(declined)).text
        pressed = await _say(container, "visitor-optin-2", "pdpa:agree")  # a Telegram button press arrives as its data
        assert (await container.store.get_reply(pressed)).text.startswith("Thank you")
        contact_id = (await container.store.load(declined)).contact_id
        assert [r.status for r in await _consents(container, contact_id)] == ["pending", "declined", "agreed"]


async def test_my_data_answers_with_a_readable_summary_in_the_customers_language(backend):
    async with running_container(backend.settings(pdpa_consent_mode="notice"), start_queue=False) as container:
        await _say(container, "visitor-access-1", "My email is mei@example.com, when can you come?")
        asked = await _say(container, "visitor-access-1", "我的资料")
        reply = await container.store.get_reply(asked)
        assert reply.backend["answerer"] == "pdpa:access" and reply.language == "zh"
        assert reply.text.startswith("我们保存的您的资料") and "{" not in reply.text, reply.text
        assert "“My email is mei@example.com, when can you come?”" in reply.text
        assert "2 条消息" in reply.text and "notified" in reply.text  # both messages are the customer's
        assert "删除我的资料" in reply.text
        contact = await container.privacy.personal_data.find_contact("web", "visitor-access-1")
        copy = await container.privacy.personal_data.export(contact.contact_id)
        assert copy["contact"]["channel_user_id"] == "visitor-access-1"  # the full copy is the download's

        typed = await _say(container, "visitor-access-1", "/my_data")
        assert (await container.store.get_reply(typed)).backend["answerer"] == "pdpa:access"
