"""Turns a message id into work: answer it, record the reply, send it exactly once.

The same processor runs in the embedded in-process queue and under arq. Its
guarantees come from the store, not the queue:

* messages of one conversation are handled oldest first, one at a time
  (a conversation lock; whoever holds it drains the conversation);
* the agent's decision is recorded once (``replies`` is unique per message), so a
  retried job reuses it instead of asking the agent again;
* each reply part has an idempotency key and a state; a part marked ``sent`` is never
  sent again, and a ``SET NX`` guard stops two workers sending the same part at once.

The remaining window: the provider accepted a part and the process died before the
``sent`` state was committed. The part is then left ``sending``; once its guard
expires the next attempt reconciles with the provider where it can list recent
messages (Twilio), and otherwise sends again. Only providers that cannot be asked
(Telegram) keep that window, one provider round trip plus one commit (milliseconds).

An ambiguous send (the request went out, the answer never came: a dropped connection,
a read timeout) is the same window seen from a live worker: the part stays ``sending``
and the retry reconciles before any resend. Where the provider cannot be asked
(Telegram), the part is not sent again: a timed-out send has almost always arrived, so
we take at-most-once and mark the part ``failed`` with code ``fate_unknown`` (staff see it).
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from agent.errors import AgentUnavailableError
from config.correlation import correlation_id
from config.types import AgentRequest, Reply
from channels.base import AmbiguousSendError, ChannelError, RecipientUnreachable
from channels.messages import Channel, OutboundMessage
from memory.models import InboundStatus, PartState
from memory.store import MessageStore, StoredMessage
from workers.hooks import MessageHook, ReplyReviser
from workers.outbound import OutboundRouter
from workers.queue import ConversationLocks, RetryLater, SendGuard

if TYPE_CHECKING:
    from memory.conversation_memory import ConversationMemory

log = logging.getLogger(__name__)

SYSTEM_ERROR = "system_error"
AMBIGUOUS = "ambiguous"  # error_code of a part whose send got no answer: reconcile before resending
FATE_UNKNOWN = "fate_unknown"  # error_code of a part we could neither confirm nor safely resend
MAX_BACKOFF_SECONDS = 300.0
# A provider that throttles or fails for a while is waited out far longer than a failing decision:
# the answer exists, only its delivery is late. With backoff capped at 5 minutes, 3x the tries is
# roughly 20-40 minutes of retrying before a part is given up as failed.
SEND_TRIES_FACTOR = 3
RECONCILE_CLOCK_SLACK = timedelta(seconds=60)  # our clock vs the provider's, and its 1 s resolution


class Answerer(Protocol):  # the slice of an agent the processor needs
    def prepare(self, text: str) -> None:
        """This message will be answered soon; slow work may start now."""

    def abandon(self, text: str) -> None:
        """This message will not be answered after all; stop what ``prepare`` started."""

    async def answer(self, request: AgentRequest, on_delta=None) -> Reply: ...  # noqa: ANN001


class SendListener(Protocol):
    async def recorded(self, channel: Channel, provider_message_id: str) -> None: ...


class MessageProcessor:
    def __init__(
        self,
        store: MessageStore,
        agent: Answerer,
        outbound: OutboundRouter,
        locks: ConversationLocks,
        guard: SendGuard,
        *,
        apology: Callable[[str], str],
        max_tries: int = 5,
        base_backoff: float = 1.0,
        hooks: list[MessageHook] | None = None,
        memory: ConversationMemory | None = None,
        busy_retry_seconds: float = 5.0,
        drain_budget_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._agent = agent
        self._outbound = outbound
        self._locks = locks
        self._guard = guard
        self._apology = apology
        self._max_tries = max_tries
        self._base_backoff = base_backoff
        self._hooks = list(hooks or [])
        self._revisers: list[ReplyReviser] = []
        self._memory = memory  # conversation memory: history, summary, profile, follow-up rewriting
        # A message whose conversation is locked is looked at again after this long: a live holder
        # will have answered it by then, and a dead holder's lock (same TTL) will have expired.
        self._busy_retry = busy_retry_seconds
        # A job drains its conversation for at most this long, then continues as a new job: a busy
        # conversation would otherwise run into the queue's job timeout, which is not retried.
        self._drain_budget = drain_budget_seconds
        self._deliveries: SendListener | None = None

    def add_hook(self, hook: MessageHook) -> None:
        self._hooks.append(hook)

    def add_reviser(self, reviser: ReplyReviser) -> None:
        """Revisers see every reply the agent gives (not hooks' decisions), in the order added."""
        self._revisers.append(reviser)

    def track_deliveries(self, listener: SendListener) -> None:
        """Told each provider id we record, so reports that arrived before it are applied."""
        self._deliveries = listener

    async def process(self, message_id: str) -> None:
        """Drain the message's conversation in order.

        If another worker holds the conversation, come back after ``busy_retry_seconds``: a live
        holder re-checks for new messages after it lets go (the retry then finds this one done),
        and a dead holder's lock has expired by then. A message already done still drains its
        conversation: a retry scheduled by a failed send of a later message arrives this way.
        """
        stored = await self._store.load(message_id)
        if stored is None:
            log.warning("message not found", extra={"message_id": message_id})
            return
        conversation_id = stored.message.conversation_id
        assert conversation_id is not None
        done = stored.status in InboundStatus.DONE
        if done and not await self._store.unfinished_in_conversation(conversation_id):
            return
        if not done:
            self._agent.prepare(stored.message.text)  # the query embedding runs while the conversation is locked
        started = time.monotonic()
        while True:
            token = await self._locks.acquire(conversation_id)
            if token is None:
                log.debug("conversation held by another worker", extra={"message_id": message_id})
                if done:
                    return  # the holder drains the conversation
                self._agent.abandon(stored.message.text)  # the holder answers it, and prepares it itself
                raise RetryLater("conversation held by another worker", defer=self._busy_retry)
            try:
                for pending_id in await self._store.unfinished_in_conversation(conversation_id):
                    if time.monotonic() - started > self._drain_budget:
                        raise RetryLater("drain budget spent; the conversation continues in a new job", defer=0.05)
                    await self._process_one(pending_id)
            finally:
                await self._locks.release(conversation_id, token)
            done = True  # this job's own message was handled in that pass
            if not await self._store.unfinished_in_conversation(conversation_id):
                return

    async def _process_one(self, message_id: str) -> None:
        correlation_id.set(message_id)
        stored = await self._store.load(message_id)
        if stored is None or stored.status in InboundStatus.DONE:
            return
        self._agent.prepare(stored.message.text)  # the query embedding runs while the bookkeeping below does
        # (a no-op when ``process`` started it already: one embedding per text is pending at most)
        attempt = await self._store.begin_attempt(message_id)
        extra = {"message_id": message_id, "conversation_id": stored.message.conversation_id, "attempt": attempt}
        reply = await self._store.get_reply(message_id)  # set when an earlier attempt decided already
        if reply is None:
            reply, parts = await self._decide_or_give_up(stored, attempt, extra)
            if not await self._store.save_reply(message_id, stored.message.conversation_id or "", reply, parts):
                reply = await self._store.get_reply(message_id)  # a racing attempt recorded its reply first
                assert reply is not None
            log.info("reply recorded", extra={**extra, "escalate": reply.escalate, "reason": reply.reason,
                                               "confidence": round(reply.confidence, 3), "parts": len(parts)})
        final_status = await self._deliver(stored, reply.escalate, attempt, extra)
        await self._store.finish(message_id, final_status)

    async def _decide_or_give_up(
        self, stored: StoredMessage, attempt: int, extra: dict
    ) -> tuple[Reply, list[OutboundMessage]]:
        """A bug or an outage anywhere in deciding (a hook, memory, the ticket store) is retried
        with backoff like a failed send; after the last try the customer gets the apology rather
        than silence, and the error stays on the message for staff."""
        try:
            return await self._decide_with_hooks(stored, attempt, extra)
        except RetryLater:
            raise
        except Exception as exc:
            await self._store.record_attempt_error(stored.message.id, f"decide: {type(exc).__name__}: {exc}")
            if attempt < self._max_tries:
                log.warning("deciding failed; retrying", exc_info=True, extra=extra)
                raise RetryLater(f"deciding failed: {type(exc).__name__}", defer=self._backoff(attempt, None)) from exc
            log.exception("deciding failed on every try; apologising", extra=extra)
            language = stored.conversation_language or "en"
            reply = Reply(text=self._apology(language), language=language, confidence=0.0,
                          escalate=True, reason=SYSTEM_ERROR, backend={"answerer": "none"})
            return reply, self.reply_parts(stored, reply)

    async def _decide_with_hooks(
        self, stored: StoredMessage, attempt: int, extra: dict
    ) -> tuple[Reply, list[OutboundMessage]]:
        decision = None
        for hook in self._hooks:
            decision = await hook.before_agent(stored)
            if decision is not None:  # a command, staff, human mode or a rate limit: no search will come
                self._agent.abandon(stored.message.text)
                break
        if decision is None:
            reply = await self._decide(stored, attempt, extra)
            for reviser in self._revisers:
                reply = reviser.revise(stored, reply)
            parts = self.reply_parts(stored, reply)
        elif decision.parts is None:
            reply = decision.reply
            parts = self.reply_parts(stored, reply)
            for part in parts:
                part.metadata.update(decision.metadata)
        else:
            reply, parts = decision.reply, list(decision.parts)
        for hook in self._hooks:
            parts += await hook.after_agent(stored, reply)
        return reply, parts

    async def _decide(self, stored: StoredMessage, attempt: int, extra: dict) -> Reply:
        msg = stored.message
        if self._memory is not None:
            request = await self._memory.request_for(stored)
        else:
            history = await self._store.history_turns(msg.conversation_id or "", msg.id)
            request = AgentRequest(
                text=msg.text,
                conversation_id=msg.conversation_id or "",
                contact_id=stored.contact_id,
                language_hint=stored.conversation_language,
                history=history,
            )
        on_delta = self._outbound.delta_sink(msg.channel, msg.sender_id, msg.id)
        try:
            reply = await self._agent.answer(request, on_delta=on_delta)
        except AgentUnavailableError as exc:
            await self._store.record_attempt_error(msg.id, f"agent: {exc}")
            if attempt < self._max_tries:
                raise RetryLater(f"agent unavailable: {exc}", defer=self._backoff(attempt, exc.retry_after)) from exc
            log.error("agent failed on every try; apologising and escalating", extra=extra)
            language = stored.conversation_language or "en"
            return Reply(text=self._apology(language), language=language, confidence=0.0,
                         escalate=True, reason=SYSTEM_ERROR, backend={"answerer": "none"})
        if self._memory is not None:
            await self._memory.record(stored, request, reply)
        return reply

    def reply_parts(self, stored: StoredMessage, reply: Reply, *, key: str = "reply") -> list[OutboundMessage]:
        """The reply to the sender, split for its channel; keys ``<message id>:<key>:<n>``."""
        msg = stored.message
        sources = [{"document": s.document, "chunk_id": s.chunk_id, "score": round(s.score, 4)} for s in reply.sources]
        pieces = self._outbound.split(msg.channel, reply.text)
        return [
            OutboundMessage(
                channel=msg.channel,
                recipient_id=msg.sender_id,
                conversation_id=msg.conversation_id or "",
                text=piece,
                in_reply_to=msg.id,
                idempotency_key=f"{msg.id}:{key}:{index}",
                sources=sources if index == len(pieces) - 1 and not reply.escalate else [],
                metadata={"language": reply.language, "escalate": str(reply.escalate).lower(),
                          "last_part": str(index == len(pieces) - 1).lower()},
            )
            for index, piece in enumerate(pieces)
        ]

    async def _deliver(self, stored: StoredMessage, escalate: bool, attempt: int, extra: dict) -> str:
        status = InboundStatus.ESCALATED if escalate else InboundStatus.ANSWERED
        failed = False
        for part in await self._store.parts_for(stored.message.id):
            if part.state in PartState.DONE:
                continue
            if part.state == PartState.FAILED:
                failed = True
                continue
            message = OutboundMessage(
                id=part.id, channel=Channel(part.channel), recipient_id=part.recipient_id,
                conversation_id=part.conversation_id, text=part.text, in_reply_to=part.inbound_message_id,
                idempotency_key=part.idempotency_key, sources=part.sources, metadata=part.meta,
            )
            if not await self._send_part(message, part.state, part.updated_at, attempt, extra,
                                         error_code=part.error_code):
                failed = True
        return InboundStatus.FAILED if failed else status

    async def _send_part(
        self, message: OutboundMessage, state: str, state_since: datetime, attempt: int, extra: dict,
        *, error_code: str | None = None,
    ) -> bool:
        key = message.idempotency_key
        if state == PartState.SENDING:
            if await self._guard.holder_alive(key):
                raise RetryLater("part is being sent by another worker", defer=1.0)
            try:
                provider_id = await self._reconcile(message, state_since)
            except ChannelError as exc:  # cannot tell whether it went out: never resend blind
                raise RetryLater(f"reconciliation failed: {exc}", defer=self._backoff(attempt, exc.retry_after)) from exc
            if provider_id is not None:
                await self._store.mark_part(message.id, PartState.SENT, provider_message_id=provider_id)
                log.info("reconciled a part the provider had already accepted", extra=extra)
                await self._recorded(message.channel, provider_id)
                return True
            if error_code == AMBIGUOUS and not self._outbound.can_reconcile(message.channel):
                return await self._fate_unknown(message, extra)
        if not await self._guard.claim(key):
            raise RetryLater("part is being sent by another worker", defer=1.0)
        try:
            await self._store.mark_part(message.id, PartState.SENDING)
            try:
                receipt = await self._outbound.send(message)
            except AmbiguousSendError as exc:
                return await self._send_ambiguous(message, exc, attempt, extra)
            except ChannelError as exc:
                return await self._send_failed(message, exc, attempt, extra)
            await self._store.mark_part(message.id, PartState.SENT, provider_message_id=receipt.provider_message_id)
        finally:
            await self._guard.release(key)
        await self._recorded(message.channel, receipt.provider_message_id)
        return True

    async def _recorded(self, channel: Channel, provider_message_id: str) -> None:
        if self._deliveries is not None:
            await self._deliveries.recorded(channel, provider_message_id)

    async def _reconcile(self, message: OutboundMessage, sending_since: datetime) -> str | None:
        """A part left ``sending`` by a dead worker: did the provider accept it?

        Sends to one recipient are sequential (the conversation lock), so a provider message
        to this recipient with this body (or, for a template send, the template rendered with
        this text: the channel knows which), created after we started this send and carrying
        a provider id we never recorded, can only be this part.
        """
        since = sending_since - RECONCILE_CLOCK_SLACK
        recent = await self._outbound.recent_sends(message.channel, message.recipient_id, since)
        if recent is None:
            return None
        for record in sorted(recent, key=lambda r: r.created_at):
            if record.created_at >= since and await self._outbound.is_same_message(message, record):
                if not await self._store.provider_id_known(message.channel, record.provider_message_id):
                    return record.provider_message_id
        return None

    async def _send_failed(self, message: OutboundMessage, exc: ChannelError, attempt: int, extra: dict) -> bool:
        log.warning("send failed", extra={**extra, "channel": message.channel.value, "code": exc.code,
                                          "retryable": exc.retryable})
        if exc.retryable and attempt < self._max_tries * SEND_TRIES_FACTOR:
            await self._store.mark_part(message.id, PartState.PENDING, last_error=str(exc)[:2000])
            raise RetryLater(f"send failed: {exc}", defer=self._backoff(attempt, exc.retry_after)) from exc
        await self._store.mark_part(message.id, PartState.FAILED, error_code=exc.code, last_error=str(exc)[:2000])
        if isinstance(exc, RecipientUnreachable):
            await self._store.mark_unreachable(message.channel, message.recipient_id)
        return False

    async def _send_ambiguous(self, message: OutboundMessage, exc: AmbiguousSendError, attempt: int,
                              extra: dict) -> bool:
        """The request went out and no answer came: leave the part ``sending`` (the retry reconciles)."""
        log.warning("send got no answer; the part stays in flight and is reconciled before any resend",
                    extra={**extra, "channel": message.channel.value, "code": exc.code})
        await self._store.note_part_error(message.id, AMBIGUOUS, str(exc)[:2000])
        if not self._outbound.can_reconcile(message.channel):  # nobody to ask: never resend blind
            return await self._fate_unknown(message, extra)
        # Long enough for the provider's list to show the message, short enough to answer soon.
        raise RetryLater(f"ambiguous send: {exc}", defer=min(self._backoff(attempt, exc.retry_after), 5.0)) from exc

    async def _fate_unknown(self, message: OutboundMessage, extra: dict) -> bool:
        """We can neither confirm the part nor resend it safely: the part is ``failed`` with code
        ``fate_unknown`` and the message ``failed`` — the permanent failure staff see — never resent."""
        log.warning("a part's delivery is unknown; not resending it",
                    extra={**extra, "channel": message.channel.value, "part_id": message.id})
        await self._store.mark_part(message.id, PartState.FAILED, error_code=FATE_UNKNOWN,
                                    last_error="the provider never answered and cannot be asked; "
                                               "the customer may or may not have received this part")
        return False

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """``Retry-After`` when the provider named one (never earlier, up to 10 % later so a crowd of
        retries does not land at once), else exponential backoff with jitter (half to all of the step)."""
        if retry_after is not None:
            return float(retry_after) * (1.0 + random.uniform(0.0, 0.1))
        ceiling = min(self._base_backoff * (2 ** (attempt - 1)), MAX_BACKOFF_SECONDS)
        return random.uniform(ceiling / 2, ceiling)
