"""Conversation memory, as the message processor sees it: build the agent's request from
what we remember, and remember what was said.

Before the agent: the recent turns (short-term memory), the rolling summary, the
contact's profile, and the message rewritten as a standalone question when it is a
follow-up ("and for the 1 kg one?"), which is what retrieval searches. After the agent:
the exchange is appended to short-term memory, stated facts go to the profile, and
once the conversation holds more than ``fold_after`` messages the older ones are folded
into the summary.

Memory makes answers better but never blocks them: if a backend fails, the message is
answered without memory and the failure is logged.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from config.types import AgentRequest, Reply, Turn
from memory.context import ContextAssembler
from memory.facts import FactExtractor, StatedFact
from memory.profile import ContactProfile, ProfileStore
from memory.rewrite import HeuristicRewriter, QueryRewriter
from memory.short_term import ConversationKey, MemoryTurn, MemoryUnavailable, ShortTermMemory
from memory.store import StoredMessage
from memory.summary import ExtractiveSummarizer, Summarizer, SummaryStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryPolicy:
    fold_after: int = 20  # messages held before the older ones are summarized
    keep_recent: int = 6  # messages kept verbatim when folding
    read_turns: int = 40  # newest turns read for a request (the token budget trims further)
    rewrite_followups: bool = True
    personalise: bool = True  # fill a question's open slot from stated facts (the size a customer said they want)
    remember_facts: bool = True

    def __post_init__(self) -> None:
        if self.keep_recent < 2 or self.fold_after <= self.keep_recent:
            raise ValueError("need keep_recent >= 2 and fold_after > keep_recent")


class ConversationMemory:
    name = "memory"  # as a PDPA personal-data holder (memory.pdpa.PersonalDataHolder)

    def __init__(
        self,
        short_term: ShortTermMemory,
        summaries: SummaryStore,
        profiles: ProfileStore,
        assembler: ContextAssembler,
        *,
        heuristic: HeuristicRewriter,
        extractive: ExtractiveSummarizer,
        facts: FactExtractor | None = None,
        rewriter: QueryRewriter | None = None,
        summarizer: Summarizer | None = None,
        policy: MemoryPolicy | None = None,
    ) -> None:
        self.short_term = short_term
        self.summaries = summaries
        self.profiles = profiles
        self.assembler = assembler
        self._heuristic = heuristic
        self._extractive = extractive
        self._facts = facts
        self._rewriter = rewriter
        self._summarizer = summarizer
        self.policy = policy or MemoryPolicy()

    # ------------------------------------------------------------ before the agent
    async def request_for(self, stored: StoredMessage) -> AgentRequest:
        msg = stored.message
        key = _key(stored)
        turns = await self._recent(key, msg.id)
        summary = await self._summary_text(key)
        profile = await self._profile(stored.contact_id)
        search_query = await self._search_query(msg.text, turns, profile, stored.conversation_language)
        return AgentRequest(
            text=msg.text,
            conversation_id=key.conversation_id,
            contact_id=key.contact_id,
            language_hint=stored.conversation_language,
            history=self.assembler.fit_turns([Turn(t.role, t.text) for t in turns]),
            search_query=search_query,
            summary=summary,
            profile=profile.as_request() if profile else {},
            channel=msg.channel.value,
        )

    async def _recent(self, key: ConversationKey, message_id: str) -> list[MemoryTurn]:
        try:
            turns = await self.short_term.recent(key, self.policy.read_turns)
        except MemoryUnavailable:
            log.warning("short-term memory unavailable; answering without history", exc_info=True)
            return []
        for index, turn in enumerate(turns):
            if turn.message_id == message_id:  # a retried job: its own turns are not history
                return turns[:index]
        return turns

    async def _summary_text(self, key: ConversationKey) -> str | None:
        try:
            summary = await self.summaries.get(key.conversation_id)
        except MemoryUnavailable:
            log.warning("summary unavailable; answering without it", exc_info=True)
            return None
        if summary is None or not summary.text:
            return None
        text, _ = self.assembler.fit_summary(summary.text)
        return text or None

    async def _profile(self, contact_id: str) -> ContactProfile | None:
        try:
            return await self.profiles.load(contact_id)
        except MemoryUnavailable:
            log.warning("profile unavailable; answering without it", exc_info=True)
            return None

    async def _search_query(self, text: str, turns: Sequence[MemoryTurn], profile: ContactProfile | None,
                            language: str | None) -> str | None:
        original = " ".join(text.split())
        query = original
        if self.policy.rewrite_followups and turns:
            history = [Turn(t.role, t.standalone or t.text) for t in turns]
            query = await self.rewrite(original, history, language)
        if self.policy.personalise and profile is not None and self.profiles.may_remember(profile.consent):
            query = self._heuristic.personalise(query, profile.fact_values())
        if query == original:
            return None
        log.debug("search query rewritten", extra={"original": original, "rewritten": query})
        return query

    async def rewrite(self, text: str, history: Sequence[Turn], language: str | None) -> str:
        """The configured rewriter, or the offline heuristic when there is none or it fails."""
        if self._rewriter is not None:
            try:
                return await self._rewriter.rewrite(text, history, language)
            except Exception:
                log.warning("query rewriter failed; using the offline heuristic", exc_info=True,
                            extra={"rewriter": getattr(self._rewriter, "name", "?")})
        return await self._heuristic.rewrite(text, history, language)

    # ------------------------------------------------------------ after the agent
    async def record(self, stored: StoredMessage, request: AgentRequest, reply: Reply) -> None:
        """Remember the exchange; a memory failure is logged, the reply still goes out."""
        msg = stored.message
        key = _key(stored)
        turns = [MemoryTurn("user", msg.text, msg.id, standalone=request.search_query, at=msg.received_at),
                 MemoryTurn("assistant", reply.text, msg.id)]
        try:
            held = await self.short_term.append(key, msg.id, turns)
            await self.profiles.touch(key.contact_id, channel=msg.channel.value, language=reply.language,
                                      new_visit=not request.history and not request.summary)
            if self.policy.remember_facts and self._facts is not None \
                    and self.profiles.may_remember(request.profile.get("consent")):
                await self.profiles.remember(key.contact_id, msg.id, await self._stated_facts(msg.text, reply.language))
            if held > self.policy.fold_after:
                await self.fold(key, reply.language)
        except MemoryUnavailable:
            log.warning("memory not updated for this message", exc_info=True,
                        extra={"message_id": msg.id, "conversation_id": key.conversation_id})

    async def _stated_facts(self, text: str, language: str | None) -> Sequence[StatedFact]:
        assert self._facts is not None
        try:
            return await self._facts.extract(text, language)
        except Exception:  # an LLM extractor that failed: this message's facts are skipped, the reply goes out
            log.warning("fact extraction failed", exc_info=True,
                        extra={"extractor": getattr(self._facts, "name", "?")})
            return []

    async def add_turn(self, contact_id: str, conversation_id: str, turn: MemoryTurn) -> None:
        """Remember a turn the agent did not produce (e.g. a staff reply relayed to the customer);
        ``turn.message_id`` (at most 32 characters) makes a repeat of the same turn a no-op."""
        await self.short_term.append(ConversationKey(contact_id, conversation_id), turn.message_id, [turn])

    async def fold(self, key: ConversationKey, language: str | None) -> bool:
        """Fold all but the newest ``keep_recent`` messages into the summary; False if nothing to fold."""
        turns = await self.short_term.recent(key)
        cut = len(turns) - self.policy.keep_recent
        while cut > 0 and turns[cut].role != "user":  # never split a question from its answer
            cut -= 1
        if cut <= 0:
            return False
        folded = turns[:cut]
        previous = await self.summaries.get(key.conversation_id)
        text, summarizer = await self._summarize(previous.text if previous else None,
                                                 [Turn(t.role, t.standalone or t.text) for t in folded], language)
        await self.summaries.save(key, text, folded=len(folded), last_message_id=folded[-1].message_id,
                                  summarizer=summarizer)
        await self.short_term.drop_oldest(key, len(folded))
        log.info("conversation summarized", extra={"conversation_id": key.conversation_id, "folded": len(folded),
                                                   "summarizer": summarizer})
        return True

    async def _summarize(self, previous: str | None, turns: list[Turn], language: str | None) -> tuple[str, str]:
        if self._summarizer is not None:
            try:
                return await self._summarizer.summarize(previous, turns, language), self._summarizer.name
            except Exception:
                log.warning("summarizer failed; using the extractive summary", exc_info=True,
                            extra={"summarizer": getattr(self._summarizer, "name", "?")})
        return await self._extractive.summarize(previous, turns, language), self._extractive.name

    # ------------------------------------------------------------ reset, retention, erasure
    async def reset(self, contact_id: str, conversation_id: str) -> None:
        """``/reset``: the conversation starts afresh (turns and summary go; the profile stays)."""
        await self.short_term.clear(ConversationKey(contact_id, conversation_id))
        await self.summaries.clear(conversation_id)

    async def forget_contact(self, contact_id: str) -> dict[str, int]:
        """Everything memory holds about a contact: Redis/SQL turns, summaries, profile and facts."""
        return {
            "memory_turns": await self.short_term.forget_contact(contact_id),
            "summaries": await self.summaries.forget_contact(contact_id),
            "profile": await self.profiles.forget_contact(contact_id),
        }

    async def purge_before(self, cutoff: datetime) -> int:
        """Retention: summaries, facts and profiles untouched since ``cutoff`` (turns expire by TTL)."""
        return await self.summaries.purge_before(cutoff) + await self.profiles.purge_before(cutoff)

    async def export_contact(self, contact: object) -> dict:
        """PDPA access request (``contact`` is a ``memory.pdpa.ContactRef``)."""
        contact_id = contact.contact_id  # type: ignore[attr-defined]
        return {
            "recent_turns": await self.short_term.export_contact(contact_id),
            "summaries": await self.summaries.export_contact(contact_id),
            "profile": await self.profiles.export_contact(contact_id),
        }

    async def erase_contact(self, contact: object) -> int:
        """PDPA erasure (``contact`` is a ``memory.pdpa.ContactRef``)."""
        return sum((await self.forget_contact(contact.contact_id)).values())  # type: ignore[attr-defined]


def _key(stored: StoredMessage) -> ConversationKey:
    return ConversationKey(stored.contact_id, stored.message.conversation_id or "")
