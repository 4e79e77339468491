"""What the agent takes and what it returns. Knows nothing of channels."""
from __future__ import annotations

from dataclasses import dataclass, field


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
    document: str
    chunk_id: str
    score: float
    text: str = ""


@dataclass
class Reply:
    text: str
    language: str
    confidence: float
    escalate: bool = False
    reason: str | None = None
    sources: list[Source] = field(default_factory=list)
    backend: dict[str, str] = field(default_factory=dict)  # which answerer / reranker produced it
