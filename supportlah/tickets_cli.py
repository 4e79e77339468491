"""``supportlah tickets list|show``: the hand-off queue from a terminal.

Reads the database only (no models, no Telegram), so it is quick and safe to run
next to a live server.
"""
from __future__ import annotations

import argparse
import json
import sys

from config.settings import Settings
from escalation.card import channel_name
from escalation.models import Ticket, TicketEvent, TicketStatus
from escalation.tickets import TicketRepository
from config.sql import create_engine, session_factory
from supportlah.migrate import prepare_database

STATUS_CHOICES = ("active", "all", TicketStatus.OPEN, TicketStatus.CLAIMED, TicketStatus.WAITING_CUSTOMER,
                  TicketStatus.RESOLVED, TicketStatus.CLOSED)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    tickets = subparsers.add_parser("tickets", help="hand-off tickets: list them or show one with its history")
    actions = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="tickets, newest first")
    listing.add_argument("--status", choices=STATUS_CHOICES, default="active",
                         help="active (open, claimed, waiting for the customer; default), all, or one status")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="one ticket with its event history")
    show.add_argument("number", type=int, help="the ticket number, as in #123")
    show.add_argument("--json", action="store_true", help="print JSON")
    return tickets


async def cmd_tickets(settings: Settings, args: argparse.Namespace) -> int:
    """Handler for ``supportlah tickets``: prints to stdout; an unknown number is exit code 1."""
    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        repository = TicketRepository(session_factory(engine))
        if args.tickets_command == "list":
            statuses = {"active": list(TicketStatus.ACTIVE), "all": None}.get(args.status, [args.status])
            rows = await repository.list(statuses, limit=args.limit)
            print(json.dumps([ticket_json(t) for t in rows], ensure_ascii=False, indent=2) if args.json
                  else format_list(rows))
            return 0
        ticket = await repository.by_number(args.number)
        if ticket is None:
            print(f"supportlah: no ticket #{args.number} (see `supportlah tickets list --status all`)",
                  file=sys.stderr)
            return 1
        events = await repository.events(ticket.id)
        if args.json:
            print(json.dumps({**ticket_json(ticket), "events": [event_json(e) for e in events]},
                             ensure_ascii=False, indent=2))
        else:
            print(format_ticket(ticket, events))
        return 0
    finally:
        await engine.dispose()


def format_list(tickets: list[Ticket]) -> str:
    if not tickets:
        return "no tickets"
    lines = [f"{'#':>5}  {'status':<16} {'priority':<8} {'channel':<9} {'reason':<16} {'assignee':<14} customer"]
    for t in tickets:
        lines.append(f"{t.number:>5}  {t.status:<16} {t.priority:<8} {channel_name(t.channel):<9} "
                     f"{t.reason:<16} {(t.assignee_name or '-')[:14]:<14} {t.customer_name or t.customer_id}")
    return "\n".join(lines)


def format_ticket(ticket: Ticket, events: list[TicketEvent]) -> str:
    lines = [
        f"Ticket #{ticket.number} — {ticket.status}, {ticket.priority} priority",
        f"Customer: {ticket.customer_name or '-'} ({channel_name(ticket.channel)} {ticket.customer_id})",
        f"Reason: {ticket.reason}   Language: {ticket.language}   Assignee: {ticket.assignee_name or '-'}",
        f"Opened: {ticket.created_at:%Y-%m-%d %H:%M} UTC   Reply due: "
        f"{ticket.sla_due_at.strftime('%Y-%m-%d %H:%M') + ' UTC' if ticket.sla_due_at else '-'}",
    ]
    if ticket.summary:
        lines.append(f"Summary: {ticket.summary}")
    if ticket.draft_text:
        lines.append(f"AI draft: {ticket.draft_text}")
        documents = ", ".join(dict.fromkeys(s.get("document", "?") for s in ticket.draft_sources))
        if documents:
            lines.append(f"Sources: {documents}")
    lines.append("History:")
    for event in events:
        who = event.actor_name or event.actor
        detail = f": {event.detail}" if event.detail else ""
        lines.append(f"  {event.at:%Y-%m-%d %H:%M}  {event.kind:<18} {who}{detail}")
    return "\n".join(lines)


def ticket_json(ticket: Ticket) -> dict:
    return {
        "number": ticket.number, "status": ticket.status, "priority": ticket.priority, "reason": ticket.reason,
        "channel": ticket.channel, "customer_id": ticket.customer_id, "customer_name": ticket.customer_name,
        "language": ticket.language, "assignee": ticket.assignee_name, "summary": ticket.summary,
        "draft": ticket.draft_text, "sources": ticket.draft_sources,
        "created_at": ticket.created_at.isoformat(),
        "sla_due_at": ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
        "first_response_at": ticket.first_response_at.isoformat() if ticket.first_response_at else None,
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
    }


def event_json(event: TicketEvent) -> dict:
    return {"at": event.at.isoformat(), "kind": event.kind, "actor": event.actor, "actor_name": event.actor_name,
            "detail": event.detail}
