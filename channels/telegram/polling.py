"""Long polling: the Telegram ingress for deployments without a public HTTPS URL.

Feeds the same normalize → Ingress path as the webhook. The offset (the next
update id to ask for) is saved only after the Ingress has committed the update, so a
crash between receiving and storing re-fetches the update instead of losing it, and a
restart never re-accepts what was already stored (Telegram forgets updates below the
offset we ask with).
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from telegram import Bot, Update
from telegram.error import BadRequest, Conflict, NetworkError, RetryAfter, TelegramError

from channels.base import Ingress
from channels.telegram.errors import map_telegram_error, retry_after_seconds
from channels.edge import MalformedInbound, checked_inbound
from channels.telegram.normalize import normalize_update
from channels.telegram.staff_chat import StaffChat
from channels.telegram.webhook import MAX_TEXT_CHARS
from channels.telegram.webhook import ALLOWED_UPDATES, delete_webhook

log = logging.getLogger(__name__)


class OffsetStore(Protocol):
    async def load(self) -> int | None: ...

    async def save(self, offset: int) -> None: ...


class OffsetStoreError(Exception):
    """The saved offset exists but cannot be read; refusing to guess avoids re-answering old messages."""


class FileOffsetStore:
    """The offset in a small text file (e.g. ``data_dir / "telegram_offset"``), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def load(self) -> int | None:
        return await asyncio.to_thread(self._read)

    async def save(self, offset: int) -> None:
        await asyncio.to_thread(self._write, offset)

    def _read(self) -> int | None:
        try:
            raw = self._path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise OffsetStoreError(f"{self._path} does not hold an update offset: {raw[:40]!r}") from exc

    def _write(self, offset: int) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(f"{offset}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class TelegramPoller:
    def __init__(
        self,
        bot: Bot,
        ingress: Ingress,
        offset_store: OffsetStore,
        staff_chat: StaffChat | int | None,
        *,
        poll_timeout: int = 30,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        delete_webhook_first: bool = True,
    ) -> None:
        self._bot = bot
        self._ingress = ingress
        self._offsets = offset_store
        self._staff_chat = StaffChat(staff_chat) if isinstance(staff_chat, int) else staff_chat
        self._poll_timeout = poll_timeout
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._delete_webhook_first = delete_webhook_first
        self._stopping = asyncio.Event()
        self._offset: int | None = None

    def stop(self) -> None:
        """Ask :meth:`run` to return; an in-flight long poll is abandoned, never a half-stored update."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until :meth:`stop` (one run per poller). Network trouble backs off; a bad token raises."""
        if self._delete_webhook_first:
            await delete_webhook(self._bot)  # getUpdates is refused while a webhook is set
        self._offset = await self._offsets.load()
        backoff = self._initial_backoff
        while not self._stopping.is_set():
            try:
                updates = await self._fetch()
                if updates is None:
                    return
                await self._process(updates)
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                log.warning("telegram asked us to slow down polling", extra={"retry_after": delay})
            except BadRequest as exc:  # our request is wrong: retrying cannot help
                raise map_telegram_error(exc) from exc
            except (NetworkError, Conflict) as exc:  # drops, timeouts, 5xx; 409 while another poller runs
                delay = backoff
                backoff = min(backoff * 2, self._max_backoff)
                log.warning("telegram polling failed; backing off",
                            extra={"error": str(exc), "kind": type(exc).__name__, "delay": delay})
            except TelegramError as exc:  # invalid token, bot blocked from the API: nothing to retry
                raise map_telegram_error(exc) from exc
            except _IngressFailed as exc:
                delay = backoff
                backoff = min(backoff * 2, self._max_backoff)
                log.error("ingress refused a telegram update; it will be fetched again",
                          extra={"update_id": exc.update_id, "delay": delay}, exc_info=exc.__cause__)
            else:
                backoff = self._initial_backoff
                continue
            if await self._sleep_or_stop(delay):
                return

    async def _fetch(self) -> tuple[Update, ...] | None:
        """One long poll; None when stopped while waiting."""
        fetch = asyncio.ensure_future(self._bot.get_updates(
            offset=self._offset, timeout=self._poll_timeout, allowed_updates=list(ALLOWED_UPDATES)))
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            fetch.cancel()  # our task was cancelled outright: don't leave the poll running unowned
            await asyncio.gather(fetch, return_exceptions=True)
            raise
        finally:
            stopped.cancel()
        if fetch.done():
            return fetch.result()
        fetch.cancel()
        await asyncio.gather(fetch, return_exceptions=True)  # reap the cancelled poll
        return None

    async def _process(self, updates: tuple[Update, ...]) -> None:
        for update in updates:
            moved = self._staff_chat is not None and await self._staff_chat.observe(update)
            message = None if moved else normalize_update(
                update, staff_chat_id=self._staff_chat.ids if self._staff_chat else None)
            if message is not None:
                try:  # the same edge checks as the webhook: control characters dropped, text capped
                    message = checked_inbound(message, max_text_chars=MAX_TEXT_CHARS)
                except MalformedInbound as exc:
                    log.warning("unusable telegram update skipped", extra={"update_id": update.update_id,
                                                                          "reason": str(exc)[:200]})
                    message = None
            if message is not None:
                try:
                    result = await self._ingress.accept(message)
                except Exception as exc:
                    raise _IngressFailed(update.update_id) from exc
                log.info("telegram update accepted", extra={"update_id": update.update_id,
                                                            "message_id": result.message_id,
                                                            "duplicate": result.duplicate})
            self._offset = update.update_id + 1
            await self._offsets.save(self._offset)

    async def _sleep_or_stop(self, delay: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True


class _IngressFailed(Exception):
    def __init__(self, update_id: int) -> None:
        super().__init__(f"ingress failed for update {update_id}")
        self.update_id = update_id
