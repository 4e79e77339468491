"""Bot commands and button presses: answered by fixed, localized texts instead of the agent.

Side effects a command asks for (store a language, forget the short-term context,
record feedback) happen here; the reply goes through the processor like any other,
so it is sent exactly once.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from config.types import Reply
from channels.messages import OutboundMessage
from channels.telegram.commands import command_reply
from channels.telegram.texts import COMMANDS
from memory.store import MessageStore, StoredMessage
from workers.hooks import Decision

log = logging.getLogger(__name__)

AnswerCallback = Callable[[str], Awaitable[None]]

HANDOFF_COMMANDS = {"human"}


class ContextMemory(Protocol):
    """Conversation memory (``memory.conversation_memory``): ``/reset`` clears it too."""

    async def reset(self, contact_id: str, conversation_id: str) -> None: ...


class CommandHook:
    def __init__(self, store: MessageStore, *, business_name: str,
                 answer_callback: AnswerCallback | None = None, memory: ContextMemory | None = None) -> None:
        self._store = store
        self._memory = memory
        self._business_name = business_name
        self._answer_callback = answer_callback

    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        meta = stored.message.metadata
        if meta.get("kind") == "callback" and self._answer_callback is not None:
            await self._stop_spinner(meta.get("callback_query_id", ""))
        if "feedback" in meta:
            return await self._feedback(stored)
        command = meta.get("command")
        if command is None or command not in COMMANDS:
            return None
        language = stored.conversation_language
        reply = command_reply(command, language=language, business_name=self._business_name,
                              args=meta.get("args", ""))
        conversation_id = stored.message.conversation_id or ""
        if reply.new_language:
            await self._store.set_conversation_language(conversation_id, reply.new_language)
        if command == "reset":
            await self._store.reset_context(conversation_id)
            if self._memory is not None:
                await self._memory.reset(stored.contact_id, conversation_id)
        escalate = command in HANDOFF_COMMANDS
        return Decision(
            reply=Reply(text=reply.text, language=reply.language, confidence=1.0, escalate=escalate,
                        reason="customer_request" if escalate else None, backend={"answerer": f"command:{command}"}),
            metadata=reply.metadata(),
        )

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []

    async def _feedback(self, stored: StoredMessage) -> Decision:
        meta = stored.message.metadata
        await self._store.record_feedback(stored.message.conversation_id or "", meta.get("feedback_for", ""),
                                          stored.message.id, helpful=meta["feedback"] == "up")
        language = stored.conversation_language or "en"
        return Decision(reply=Reply(text="", language=language, confidence=1.0,
                                    backend={"answerer": "feedback"}), parts=[])

    async def _stop_spinner(self, callback_query_id: str) -> None:
        try:
            await self._answer_callback(callback_query_id)
        except Exception:  # the spinner stops by itself after a while; the press is still handled
            log.warning("could not answer a callback query", exc_info=True)
