"""Appends still waiting for the brokers, by the partition of the record whose work they finish.

At a revocation the worker waits only a few seconds for the revoked partitions' running jobs: a long job goes on,
and its partition's next owner may run it too (at least once). A job whose work is done and whose outcome only waits
for the brokers is another matter: while a crashed leader is fenced (about ten seconds) the append hangs, the next
owner reads the partition's tail without it, and runs the job again: two outcomes in the log (the broker-fault test
saw five in two hundred). Such appends are bounded by the brokers, not by the job, so a revocation waits for them.
"""

import asyncio
from collections.abc import Awaitable, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# The (topic, partition) of the record a task is working for; set when a slot or a retry starts its task.
WORKING_FOR: ContextVar[tuple[str, int] | None] = ContextVar("zixly_working_for", default=None)


class AppendsInFlight:
    def __init__(self) -> None:
        self._appends: dict[asyncio.Future[Any], tuple[str, int]] = {}

    async def track(self, append: Awaitable[T]) -> T:
        """``append``, remembered under the partition the current task works for until it completes."""
        working_for = WORKING_FOR.get()
        if working_for is None:
            return await append
        task = asyncio.ensure_future(append)
        self._appends[task] = working_for
        task.add_done_callback(lambda done: self._appends.pop(done, None))
        # Shielded: a task stopped mid-append (a shutdown) does not take the append back; it lands, or fails alone.
        return await asyncio.shield(task)

    async def drained(self, partitions: Iterable[tuple[str, int]], patience: float) -> tuple[int, int]:
        """Waits up to ``patience`` seconds for the appends of ``partitions``; how many landed and how many still
        wait."""
        wanted = set(partitions)
        appends = [task for task, working_for in self._appends.items() if working_for in wanted]
        if not appends:
            return 0, 0
        _, pending = await asyncio.wait(appends, timeout=patience)
        return len(appends) - len(pending), len(pending)
