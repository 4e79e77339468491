"""Group commit: concurrent callers share one write instead of paying for one each.

Each caller hands in an item and waits for its own result. While a write is in
flight, new items gather; when it finishes, they all go in the next write. Nothing
waits on a timer, so a lone request is written at once, and under load the cost
per item falls with the batch size. A failed batch is retried item by item, so one
bad item fails only its own caller.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write_many: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *,
                 max_batch: int = 64) -> None:
        self._write_many = write_many
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            # A fresh context: the writer serves many callers, so it must not log as the first one
            # (their correlation ids live in context variables).
            self._writer = asyncio.create_task(self._drain(), name="group-commit", context=contextvars.Context())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # one loop turn: requests already read off the sockets join this batch
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch:]
            try:
                await self._write(batch)
            except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("writer stopped"))
                raise

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write_many([item for item, _future in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            log.warning("batched write failed; retrying its items one by one",
                        extra={"batch": len(batch), "error": type(exc).__name__})
            for pair in batch:
                await self._write([pair])
            return
        for (_item, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future, *, result: object = None, error: Exception | None = None) -> None:
    if future.done():  # the caller went away (cancelled): a result needs nobody, an error is still told
        if error is not None:
            log.warning("write failed after its caller went away", exc_info=error)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
