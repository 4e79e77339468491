"""The staff group's chat id, which Telegram can change under us.

Turning on Topics (or passing 200 members) converts a group into a supergroup with a
new id. From then on every call to the old id is answered 400 with
``parameters.migrate_to_chat_id`` (PTB raises ``ChatMigrated``), and updates come from
the new id. :class:`StaffChat` is the one place that knows the current id: it starts
from ``SUPPORTLAH_STAFF_CHAT_ID``, follows the moves recorded in the database (so a
restart or another process agrees), records a move it learns about (a refused call, or
the ``migrate_to_chat_id`` / ``migrate_from_chat_id`` service message Telegram sends to
the group) and accepts updates from every id the group has had.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from telegram import Update

log = logging.getLogger(__name__)

MoveListener = Callable[[int, int], Awaitable[None]]


class ChatMoves(Protocol):
    """Where moves are persisted (the message store)."""

    async def chat_moved_to(self, chat_id: int) -> int | None: ...

    async def record_chat_move(self, old_chat_id: int, new_chat_id: int) -> bool:
        """True if this call recorded it (another process may have been first)."""


class StaffChat:
    def __init__(self, configured_id: int, moves: ChatMoves | None = None) -> None:
        self.configured_id = configured_id
        self._current = configured_id
        self._ids = {configured_id}
        self._moves = moves
        self._listeners: list[MoveListener] = []

    @property
    def current(self) -> int:
        return self._current

    def is_staff(self, chat_id: int) -> bool:
        """Updates from the group under any id it has had are staff updates."""
        return chat_id in self._ids

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self._ids)

    def on_move(self, listener: MoveListener) -> None:
        """Run once per move, by the process that recorded it (post a notice, move stored rows)."""
        self._listeners.append(listener)

    async def load(self) -> None:
        """Follow the moves already recorded (a group can move more than once, in theory)."""
        if self._moves is None:
            return
        for _ in range(8):
            moved = await self._moves.chat_moved_to(self._current)
            if moved is None or moved in self._ids:
                return
            self._ids.add(moved)
            self._current = moved

    async def follow(self, old_id: int, new_id: int) -> bool:
        """The group ``old_id`` is now ``new_id``; True if this process recorded the move first."""
        if old_id not in self._ids or new_id == self._current:
            return False
        self._ids.add(new_id)
        self._current = new_id
        recorded = await self._moves.record_chat_move(old_id, new_id) if self._moves is not None else True
        log.warning("the staff group became a supergroup; following it", extra={"recorded_here": recorded})
        if recorded:
            for listener in self._listeners:
                await listener(old_id, new_id)
        return recorded

    async def observe(self, update: Update) -> bool:
        """Follow the move a service message announces; True if ``update`` was one (nothing to answer)."""
        message = update.effective_message
        if message is None:
            return False
        if message.migrate_to_chat_id and self.is_staff(message.chat.id):
            await self.follow(message.chat.id, message.migrate_to_chat_id)
            return True
        if message.migrate_from_chat_id and self.is_staff(message.migrate_from_chat_id):
            await self.follow(message.migrate_from_chat_id, message.chat.id)
            return True
        return False
