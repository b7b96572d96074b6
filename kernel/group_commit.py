"""Group commit: calls that arrive while a write is under way go together in the next write.

There is no timer. An idle store writes each call at once (no added latency); a busy one writes groups as large
as the load makes them, so the number of round trips grows with the write time, not with the request rate. Each
caller still gets its own result, or its own exception.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A write's result for each item, in the items' order: a value, or the exception that item's caller raises.
Outcomes = Sequence[R | BaseException]


class GroupCommit(Generic[T, R]):
    def __init__(
        self, write: Callable[[list[T]], Awaitable[Outcomes[R]]], max_batch: int = 256, writers: int = 2
    ) -> None:
        """``writers`` writes may be under way at once: the next group gathers while one waits for the database."""
        self._write = write
        self._max_batch = max_batch
        self._writers = writers
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # a caller gone before its outcome leaves no "never retrieved" noise
        self._pending.append((item, future))
        if len(self._running) < self._writers:
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        # A caller that gives up (a client gone) does not cancel the write the others share.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                outcomes = await self._write([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"a group write gave {len(outcomes)} outcomes for {len(batch)} items")
            except BaseException as exc:  # every caller of the group learns that the write failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def _retrieved(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()
