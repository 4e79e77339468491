"""Conversation memory over real backends for tests: SQLite (embedded) or Postgres + Redis (production).

Built with ``supportlah.memory_wiring.build_memory`` from the same settings the app uses,
on a migrated database; messages are recorded through the real ``MessageStore`` so every
foreign key (contact, conversation, source message) is genuine.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from config.types import Reply
from channels.messages import Channel, InboundMessage, new_id
from config.vocabulary import load_vocabulary
from config.settings import Settings
from memory.conversation_memory import ConversationMemory
from config.sql import create_engine, session_factory
from memory.store import MessageStore, StoredMessage
from supportlah import migrate
from supportlah.memory_wiring import build_memory


@dataclass
class MemoryStack:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker
    store: MessageStore
    redis: Redis | None
    memory: ConversationMemory

    def rebuilt(self, **kwargs: object) -> ConversationMemory:
        """A fresh ConversationMemory over the same databases (as after a restart)."""
        return build_memory(self.settings, self.sessions, self.redis,
                            **{"vocabulary": load_vocabulary(self.settings.vocabulary_path), **kwargs})

    async def message(self, text: str, *, sender: str = "customer-1", channel: Channel = Channel.WEB) -> StoredMessage:
        msg = InboundMessage(channel=channel, provider_message_id=new_id(), sender_id=sender, text=text)
        accepted = await self.store.record_inbound(msg)
        stored = await self.store.load(accepted.message_id)
        assert stored is not None
        return stored

    async def exchange(self, text: str, answer: str, *, sender: str = "customer-1",
                       memory: ConversationMemory | None = None,
                       language: str = "en") -> tuple[StoredMessage, str | None]:
        """One customer message through memory: request, then record ``answer`` as our reply.
        Returns the stored message and the search query memory produced for it."""
        memory = memory or self.memory
        stored = await self.message(text, sender=sender)
        request = await memory.request_for(stored)
        await memory.record(stored, request, Reply(text=answer, language=language, confidence=0.9))
        return stored, request.search_query


@asynccontextmanager
async def memory_stack(settings: Settings) -> AsyncIterator[MemoryStack]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.sqlalchemy_url)
    engine = create_engine(settings.sqlalchemy_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    sessions = session_factory(engine)
    try:
        yield MemoryStack(settings, engine, sessions, MessageStore(sessions), redis,
                          build_memory(settings, sessions, redis, vocabulary=load_vocabulary(settings.vocabulary_path)))
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
