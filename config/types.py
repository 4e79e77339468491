"""What the agent takes and what it returns, shared by every layer that stores, sends or shows a reply.

They live at the bottom, beside the settings, because memory records them, workers and escalation
route them and channels carry their sources: none of those may import the agent. Knows nothing of
channels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class HandoffReason(StrEnum):
    """Why a reply brought staff in (``Reply.reason``, the ticket's reason, the analytics' buckets).

    The values are the strings stored in ``replies.reason`` and ``tickets.reason``.
    """

    LOW_CONFIDENCE = "low_confidence"  # the documents do not answer it well enough
    CUSTOMER_REQUEST = "customer_request"  # the customer asked for a person
    SENSITIVE_TOPIC = "sensitive_topic"  # complaint, refund dispute, legal or safety words
    UNSATISFIED = "unsatisfied"  # two signs in a row that the answers did not help
    ATTACHMENT = "attachment"  # a photo or document without a question
    SYSTEM_ERROR = "system_error"  # the agent failed on every try; the customer got an apology
    UNGROUNDED_ANSWER = "ungrounded_answer"  # the model's answer cited no source it was given
    UNSAFE_ANSWER = "unsafe_answer"  # the output guard stopped the model's answer
    NEEDS_STAFF = "needs_staff"  # the model asked for staff through its escalation tool
    EMPTY_MESSAGE = "empty_message"  # nothing to answer (the reply asks for a question; no hand-off)
    AGENT_DECISION = "agent_decision"  # an escalating reply that named no reason


class FallbackRecorder(Protocol):
    """Counts a component falling back to its simpler path (reranker -> local fusion, model ->
    extractive answer), by reason, for the operator's metrics. Declared here because retrieval and
    the agent both report to it."""

    def record(self, component: str, reason: str) -> None: ...


@dataclass
class Turn:
    role: str  # "user" | "assistant" | "staff"
    text: str


@dataclass
class AgentRequest:
    text: str
    conversation_id: str
    contact_id: str
    language_hint: str | None = None  # the conversation's language so far (short messages lean on it)
    history: list[Turn] = field(default_factory=list)
    search_query: str | None = None  # a follow-up rewritten as a standalone question (memory); None: use text
    summary: str | None = None  # rolling summary of older turns (memory)
    profile: dict[str, str] = field(default_factory=dict)  # durable facts about the customer (memory)
    channel: str | None = None  # informational only (e.g. for cost accounting); the agent must not branch on it


@dataclass
class Source:
    """A document chunk a reply quotes or stands on: cited to the customer, shown to staff."""

    document: str
    chunk_id: str
    score: float
    text: str = ""  # the chunk's text, for staff; never stored with the reply or sent with a part

    def as_record(self) -> dict[str, object]:
        """The JSON form kept in ``replies.sources``, ``outbound_messages.sources`` and ticket drafts."""
        return {"document": self.document, "chunk_id": self.chunk_id, "score": self.score}


@dataclass
class Reply:
    text: str
    language: str
    confidence: float
    escalate: bool = False
    reason: HandoffReason | None = None
    sources: list[Source] = field(default_factory=list)
    backend: dict[str, str] = field(default_factory=dict)  # which answerer / reranker produced it
