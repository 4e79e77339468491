"""``supportlah tickets list|show`` over an embedded database."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from channels.messages import Channel, InboundMessage
from config.settings import load_settings
from supportlah.tickets_cli import cmd_tickets, register
from escalation.models import Priority, TicketStatus
from escalation.tickets import NewTicket, TicketRepository
from config.sql import create_engine, session_factory
from memory.store import MessageStore
from supportlah.container import prepare_database


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="supportlah")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["tickets", *argv])


@pytest.fixture
async def settings(tmp_path: Path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data")
    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url)
    sessions = session_factory(engine)
    store, tickets = MessageStore(sessions), TicketRepository(sessions)
    for number, (sender, status) in enumerate([("whatsapp:+6591110001", TicketStatus.OPEN),
                                               ("whatsapp:+6591110002", TicketStatus.RESOLVED)], start=1):
        message = InboundMessage(channel=Channel.WHATSAPP, provider_message_id=f"SM{number}", sender_id=sender,
                                 sender_name=f"Customer {number}", text="My aircon smells of burning")
        await store.record_inbound(message)
        stored = await store.load(message.id)
        ticket = await tickets.open(NewTicket(
            conversation_id=stored.message.conversation_id, contact_id=stored.contact_id, channel="whatsapp",
            customer_id=sender, customer_name=f"Customer {number}", language="en", reason="sensitive_topic",
            priority=Priority.URGENT, opened_by_message_id=message.id, summary="Asks: “burning smell”",
            draft_text="Switch the unit off at the isolator.", draft_sources=[{"document": "safety.md"}]))
        await tickets.change(ticket.id, key=f"{number}:claim", kind="claimed", actor="staff:1", actor_name="Alice",
                             status=TicketStatus.CLAIMED, assignee_name="Alice")
        if status == TicketStatus.RESOLVED:
            await tickets.change(ticket.id, key=f"{number}:done", kind="resolved", actor="staff:1",
                                 actor_name="Alice", status=status)
    await engine.dispose()
    return settings


async def test_list_shows_active_tickets_by_default_and_all_on_request(settings, capsys):
    assert await cmd_tickets(settings, parse("list")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].split()[:4] == ["1", "claimed", "urgent", "WhatsApp"]
    assert await cmd_tickets(settings, parse("list", "--status", "all", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["number"], t["status"]) for t in listed] == [(2, "resolved"), (1, "claimed")]


async def test_show_prints_the_ticket_with_its_history(settings, capsys):
    assert await cmd_tickets(settings, parse("show", "2")) == 0
    out = capsys.readouterr().out
    assert "Ticket #2 — resolved, urgent priority" in out and "AI draft: Switch the unit off" in out
    assert "Sources: safety.md" in out
    history = [line.split()[2] for line in out.split("History:\n")[1].splitlines()]
    assert history == ["opened", "claimed", "resolved"]
    assert await cmd_tickets(settings, parse("show", "1", "--json")) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["assignee"] == "Alice" and [e["kind"] for e in shown["events"]] == ["opened", "claimed"]


async def test_an_unknown_number_is_a_clear_error(settings, capsys):
    assert await cmd_tickets(settings, parse("show", "99")) == 1
    assert "no ticket #99" in capsys.readouterr().err
