"""Tools the model may call while answering, and what each one does here.

* ``search_knowledge_base``: a second, reworded search; new chunks join the numbered sources.
* ``business_hours``: whether staff are in now and when they are next; becomes a citable source.
* ``escalate_to_human``: brings a person in (the reply is then marked for hand-off).
* ``ticket_status``: the customer's own support ticket, never anyone else's; only when a
  :class:`TicketLookup` is given (tickets live in ``escalation/``).

Tool results go back to the model masked and fenced like any other data; a tool that
fails tells the model so in words (and is logged) rather than failing the answer.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from agent.agent import Retriever
from agent.glossary import Glossary
from agent.llm_client import ToolCall
from agent.prompting import SourceBook, render_sources
from agent.safety import MaskSession, fence
from config.types import AgentRequest, HandoffReason
from config.hours import BusinessHours
from rag.embedding import EmbeddingError
from rag.index import VectorIndexError

logger = logging.getLogger(__name__)

SEARCH = "search_knowledge_base"
HOURS = "business_hours"
ESCALATE = "escalate_to_human"
TICKET = "ticket_status"

ESCALATION_REASONS = {  # what the model may say -> Reply.reason
    "customer_request": HandoffReason.CUSTOMER_REQUEST,
    "complaint": HandoffReason.SENSITIVE_TOPIC,
    "safety": HandoffReason.SENSITIVE_TOPIC,
    "needs_staff": HandoffReason.NEEDS_STAFF,
}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class TicketView:
    number: int
    status: str  # open | claimed | waiting_customer | resolved | closed
    opened_at: datetime
    updated_at: datetime


class TicketLookupError(Exception):
    """The ticket store could not be read."""


class TicketLookup(Protocol):
    async def ticket_status(self, conversation_id: str, contact_id: str, number: int | None) -> TicketView | None:
        """The ticket ``number`` if it belongs to this contact, else the conversation's latest; None if none.

        Raises ``TicketLookupError`` when the store cannot be read."""
        ...


@dataclass
class ToolContext:
    request: AgentRequest
    book: SourceBook
    session: MaskSession
    escalation: HandoffReason | None = None  # Reply.reason once the model escalated
    searches: int = 0


class ToolBox:
    def __init__(
        self,
        retriever: Retriever,
        *,
        top_k: int = 5,
        hours: BusinessHours | None = None,
        hours_spec: str = "",
        tickets: TicketLookup | None = None,
        glossary: Glossary | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        max_searches: int = 2,
    ) -> None:
        self._retriever = retriever
        self._top_k = top_k
        self._hours = hours
        self._hours_spec = hours_spec
        self._tickets = tickets
        self._glossary = glossary if glossary is not None else Glossary()
        self._clock = clock
        self._max_searches = max_searches

    @property
    def names(self) -> list[str]:
        return [d["function"]["name"] for d in self.definitions()]

    def definitions(self) -> list[dict]:
        tools = [
            _tool(SEARCH, "Search the business's documents again with a reworded query.",
                  {"query": {"type": "string", "description": "A standalone search query."}}, ["query"]),
            _tool(ESCALATE, "Hand the conversation to a person from the team.",
                  {"reason": {"type": "string", "enum": sorted(ESCALATION_REASONS)},
                   "summary": {"type": "string", "description": "One line for staff on what the customer needs."}},
                  ["reason", "summary"]),
        ]
        if self._hours is not None:
            tools.append(_tool(HOURS, "Whether staff are available right now, and the weekly hours.", {}, []))
        if self._tickets is not None:
            tools.append(_tool(
                TICKET, "Status of this customer's support ticket.",
                {"ticket_number": {"type": ["integer", "null"], "description": "The ticket number, if the "
                                   "customer gave one; null for their latest ticket."}},
                ["ticket_number"]))
        return tools

    async def run(self, call: ToolCall, ctx: ToolContext) -> str:
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            return "error: the arguments are not valid JSON"
        if not isinstance(arguments, dict):
            return "error: the arguments must be a JSON object"
        logger.info("tool called", extra={"tool": call.name, "conversation_id": ctx.request.conversation_id})
        if call.name == SEARCH:
            return await self._search(str(arguments.get("query") or ""), ctx)
        if call.name == ESCALATE:
            reason = ESCALATION_REASONS.get(str(arguments.get("reason")), HandoffReason.NEEDS_STAFF)
            ctx.escalation = ctx.escalation or reason
            return "Done: a person from the team will reply in this chat. Tell the customer so in one sentence."
        if call.name == HOURS and self._hours is not None:
            entry = ctx.book.add_fact("business-hours", self._hours_text())
            return render_sources([entry], ctx.session)
        if call.name == TICKET and self._tickets is not None:
            return await self._ticket(arguments.get("ticket_number"), ctx)
        return f"error: there is no tool named {fence(call.name)!r}"

    async def _search(self, query: str, ctx: ToolContext) -> str:
        if not query.strip():
            return "error: give a query"
        if ctx.searches >= self._max_searches:
            return "No more searches for this question: answer from the sources you have, or hand off."
        ctx.searches += 1
        try:
            chunks = await self._retriever.search(self._glossary.expand(query), self._top_k)
        except (VectorIndexError, EmbeddingError) as exc:
            logger.warning("tool search failed: %s", type(exc).__name__)
            return "The search is unavailable right now: answer from the sources you have, or hand off."
        added = ctx.book.add_chunks(chunks)
        if not added:
            return "No further sources found."
        return render_sources(added, ctx.session)

    def _hours_text(self) -> str:
        assert self._hours is not None
        now = self._clock()
        local = self._hours.local(now)
        lines = [f"Now: {_WEEKDAYS[local.weekday()]} {local:%H:%M} ({self._hours.zone.key} time)."]
        if self._hours.is_open(now):
            minute = local.hour * 60 + local.minute
            end = next(e for s, e in self._hours.spans_on(local.date()) if s <= minute < e)
            lines.append(f"Staff are available now, until {end // 60:02d}:{end % 60:02d} today.")
        else:
            back = self._hours.next_open(now)
            if back is None:
                lines.append("Staff are away now; no staffed hours are scheduled in the next three weeks.")
            else:
                back_local = self._hours.local(back)
                lines.append(f"Staff are away now; they are back {_WEEKDAYS[back_local.weekday()]} "
                             f"{back_local:%Y-%m-%d} at {back_local:%H:%M}.")
        if self._hours_spec:
            lines.append(f"Weekly hours: {self._hours_spec}. Closed on public holidays.")
        return "\n".join(lines)

    async def _ticket(self, number: object, ctx: ToolContext) -> str:
        assert self._tickets is not None
        wanted = number if isinstance(number, int) and not isinstance(number, bool) else None
        try:
            view = await self._tickets.ticket_status(ctx.request.conversation_id, ctx.request.contact_id, wanted)
        except TicketLookupError as exc:
            logger.warning("ticket lookup failed: %s", exc)
            return "The ticket system is unavailable right now: offer to pass the question to the team."
        if view is None:
            return "No ticket found for this customer." + (f" (none numbered {wanted})" if wanted else "")
        text = (f"Ticket #{view.number}: status {view.status}; opened {view.opened_at:%Y-%m-%d %H:%M} UTC; "
                f"last update {view.updated_at:%Y-%m-%d %H:%M} UTC.")
        entry = ctx.book.add_fact(f"ticket-{view.number}", text)
        return render_sources([entry], ctx.session)


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False},
    }}
