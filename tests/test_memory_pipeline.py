"""Memory through the whole pipeline (container, queue, processor, agent), in both modes: a follow-up
gets the condo price, /reset forgets the conversation, a customer coming back is recognized."""
from __future__ import annotations

import asyncio
from pathlib import Path

from channels.messages import Channel, InboundMessage, new_id
from memory.facts import StatedFact
from tests.harness import drain, running_container, web_message

PRICES = """# Aircon Services and Prices

All prices are per fan coil unit and include 9% GST.

## General Service

A general service cleans the filters, front panel and drainage pipe. It takes about 30-45 minutes per unit.

- General service for an HDB flat: $25 per unit (code GS-HDB).
- General service for a condominium: $30 per unit (code GS-CONDO).
- General service for a landed property: $35 per unit (code GS-LANDED).

## Chemical Wash

A chemical wash dismantles the fan coil and washes the cooling coil with a non-corrosive solution.

- Chemical wash for an HDB flat: $80 per unit (code CW-HDB).
- Chemical wash for a condominium: $90 per unit (code CW-CONDO).
- Chemical wash for a landed property: $100 per unit (code CW-LANDED).
"""
CONDO_ACCESS = """# Condo jobs

For a condo, the condominium management office must approve our technicians before the visit.
Register us at the condo guardhouse; condo visitor parking is limited, so allow extra time.
"""
HOURS = """OPENING HOURS

Our office is open Monday to Saturday, 9am to 6pm. We are closed on Sundays and public holidays.
"""


async def _ingest(container, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    for name, text in (("services-and-prices.md", PRICES), ("condo-access.md", CONDO_ACCESS),
                       ("opening-hours.txt", HOURS)):
        (kb / name).write_text(text, encoding="utf-8")
    report = await container.ingestor.ingest([kb])
    assert not report.failed


async def _ask(container, message: InboundMessage):
    accepted = await container.ingress.accept(message)
    await drain(container)
    reply = await container.store.get_reply(accepted.message_id)
    assert reply is not None
    return reply


async def test_follow_up_is_answered_from_memory_and_reset_forgets_it(backend, tmp_path):
    async with running_container(backend.settings(pdpa_consent_mode="off"), start_queue=False) as container:
        await _ingest(container, tmp_path)
        visitor = "visitor-memory-1"
        first = await _ask(container, web_message(visitor, "How much is a general service for an HDB flat?"))
        assert "$25" in first.text and not first.escalate

        follow_up = await _ask(container, web_message(visitor, "and for a condo?"))
        assert not follow_up.escalate and "$30" in follow_up.text and "GS-CONDO" in follow_up.text
        assert follow_up.sources[0]["document"] == "services-and-prices.md"

        reset = InboundMessage(channel=Channel.WEB, provider_message_id=new_id(), sender_id=visitor, text="/reset",
                               metadata={"command": "reset", "args": ""})
        await _ask(container, reset)
        after_reset = await container.store.record_inbound(web_message(visitor, "and for landed?"))
        request = await container.memory.request_for(await container.store.load(after_reset.message_id))
        assert request.history == [] and request.summary is None and request.search_query is None

        # a PDPA erasure reaches memory too (the container registers it as a personal-data holder)
        contact_id = (await container.store.load(follow_up.inbound_message_id)).contact_id
        await container.memory.profiles.remember(contact_id, follow_up.inbound_message_id, [
            StatedFact("property", "condo", "I live in a condo")])
        report = await container.privacy.personal_data.erase(contact_id, requested_via="admin")
        assert report is not None and report.counts["memory"] >= 2  # the profile row and the fact
        assert (await container.memory.profiles.load(contact_id)).facts == []


async def test_a_customer_who_comes_back_later_is_recognized(backend, tmp_path):
    settings = backend.settings(pdpa_consent_mode="off", memory_ttl_seconds=1.0)
    async with running_container(settings, start_queue=False) as container:
        await _ingest(container, tmp_path)
        visitor = "visitor-memory-2"
        first = await _ask(container, web_message(visitor, "How much is a general service for my condo in Bishan?"))
        assert "$30" in first.text and not first.escalate
    await asyncio.sleep(1.2)  # "next week": short-term memory has expired; the server restarted
    async with running_container(settings, start_queue=False) as restarted:
        later = await _ask(restarted, web_message(visitor, "How much is a chemical wash?"))
        assert "$90" in later.text and "CW-CONDO" in later.text, "answered for the condo we remember"
        contact_id = (await restarted.store.load(later.inbound_message_id)).contact_id
        profile = await restarted.memory.profiles.load(contact_id)
        assert profile.visits == 2 and profile.fact_values() == {"property": "condo", "area": "Bishan"}
