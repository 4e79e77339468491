"""Staff actions from the console and the admin API, as staff messages on the one inbound path.

A reply typed in the console becomes the same normalized :class:`InboundMessage` a
message in the Telegram staff group does (``#123 text``, marked ``staff``), on channel
``staff``, and is accepted through the pipeline's ingress. :class:`escalation.desk.StaffDesk`
then relays it exactly as it relays the group's messages: once (the client's id is the
provider id, so a double-click or retried POST is one message), through the customer's
channel with its rules (WhatsApp's 24-hour window and templates), and quoted in the
ticket's Telegram topic when there is a staff group.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from channels.base import AcceptResult, Ingress
from channels.messages import Channel, InboundMessage
from escalation.tickets import TicketRepository

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_REPLY_CHARS = 4000


class StaffAction(StrEnum):
    """What a staff member can do to a ticket, as the staff desk's commands name them."""

    REPLY = "reply"
    NOTE = "note"
    CLAIM = "claim"
    RESOLVE = "resolve"
    BOT = "bot"  # return the conversation to the bot
    DRAFT = "draft"  # send the AI draft
    REOPEN = "reopen"
    CLOSE = "close"


class InvalidStaffAction(ValueError):
    """The action cannot be submitted (empty or oversized text, bad client id); the message says why."""


@dataclass(frozen=True)
class Actor:
    """Who acts: ``user_id`` becomes the ticket's assignee id and the audit actor (``staff:<user_id>``)."""

    user_id: str
    name: str


class StaffActions:
    def __init__(self, ingress: Ingress, tickets: TicketRepository) -> None:
        self._ingress = ingress
        self._tickets = tickets

    async def submit(self, number: int, action: StaffAction, actor: Actor, *, client_id: str,
                     text: str = "") -> AcceptResult | None:
        """Store and enqueue the staff message; the desk does the rest. Returns the message id (and
        ``duplicate`` when this client id was submitted before), None when there is no ticket ``number``."""
        if await self._tickets.by_number(number) is None:
            return None
        if not CLIENT_ID.match(client_id):
            raise InvalidStaffAction("client_id: 8 to 64 letters, digits, '-' or '_'")
        text = text.strip()
        if action in (StaffAction.REPLY, StaffAction.NOTE):
            if not text:
                raise InvalidStaffAction("write something first")
            if len(text) > MAX_REPLY_CHARS:
                raise InvalidStaffAction(f"at most {MAX_REPLY_CHARS} characters")
        if action == StaffAction.REPLY:
            body = f"#{number} {text}"
            if text.startswith("/"):  # a reply, never read as a desk command
                body = f"#{number} \u200b{text}"
        elif action == StaffAction.NOTE:
            body = f"#{number} /note {text}"
        else:
            body = f"#{number} /{action.value}"
        message = InboundMessage(
            channel=Channel.STAFF, provider_message_id=f"console:{client_id}", sender_id=actor.user_id,
            sender_name=actor.name, text=body,
            metadata={"staff": "true", "user_id": actor.user_id, "console_action": action.value},
        )
        return await self._ingress.accept(message)


class ApiReplies:
    """``POST /api/admin/tickets/{number}/reply`` (``supportlah.admin.api.TicketReplies``): the same staff
    message as the console's "Send reply", written by an API key."""

    def __init__(self, actions: StaffActions) -> None:
        self._actions = actions

    async def reply(self, number: int, text: str, *, key_prefix: str, client_id: str) -> AcceptResult | None:
        actor = Actor(user_id=f"key:{key_prefix}"[:32], name=f"API key {key_prefix}")
        return await self._actions.submit(number, StaffAction.REPLY, actor, client_id=client_id, text=text)
