"""Extension points around the agent, used by features that are not "answer the question":
bot commands, staff hand-off and relay, consent. The processor records whatever a hook
decides exactly like an agent reply, so hooks get the same exactly-once delivery."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from config.types import Reply
from channels.messages import OutboundMessage
from memory.store import StoredMessage


@dataclass
class Decision:
    """What to record for a message instead of asking the agent.

    ``reply`` is stored as the message's reply (its text may be empty when nothing goes
    back to the sender); ``parts`` are every message to send, to anyone, in order.
    Idempotency keys must derive from the inbound message id so a retry reuses them.
    """

    reply: Reply
    parts: list[OutboundMessage] | None = None  # None: the reply, sent back to the sender
    metadata: dict[str, str] = field(default_factory=dict)  # added to the reply's parts (e.g. a keyboard)


class MessageHook(Protocol):
    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        """Take the message over (command, staff message, human mode), or None to let the agent answer."""

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        """Extra parts to send with the recorded reply, whoever decided it (e.g. a hand-off card)."""


class ReplyReviser(Protocol):
    def revise(self, stored: StoredMessage, reply: Reply) -> Reply:
        """The agent's reply as it is to be recorded and sent (e.g. opened with what a voice note was heard as)."""
