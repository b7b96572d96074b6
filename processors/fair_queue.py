"""Fair sharing of a worker between tenants: requested jobs wait in one queue per tenant, and free slots take from
the queues in turn, so one tenant's backlog of thousands does not hold back another tenant's next job.

Bounded in total: when it is full, the agent stops reading the log (back pressure), and nothing is lost: a record
is acknowledged only after its job has run, so what waits here is read again by the next owner of its partition.
"""

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()
        self._size = 0
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return self._size

    def depths(self) -> dict[str, int]:
        """How many items each tenant has waiting."""
        return {tenant: len(queue) for tenant, queue in self._queues.items()}

    async def put(self, tenant: str, item: T) -> None:
        """Queues the item behind the tenant's others; waits while the queue is full."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._size < self._capacity)
            self._queues.setdefault(tenant, deque()).append(item)
            self._size += 1
            self._changed.notify_all()

    async def get(self) -> tuple[str, T]:
        """The next tenant's oldest item; that tenant then goes to the back of the round."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._size > 0)
            tenant, queue = next(iter(self._queues.items()))
            item = queue.popleft()
            del self._queues[tenant]
            if queue:
                self._queues[tenant] = queue  # behind every other tenant with work waiting
            self._size -= 1
            self._changed.notify_all()
            return tenant, item

    async def drop(self, unwanted: Callable[[T], bool]) -> int:
        """Removes the items ``unwanted`` picks (a revoked partition's: their new owner runs them); how many."""
        async with self._changed:
            dropped = 0
            for tenant in list(self._queues):
                kept = deque(item for item in self._queues[tenant] if not unwanted(item))
                dropped += len(self._queues[tenant]) - len(kept)
                if kept:
                    self._queues[tenant] = kept
                else:
                    del self._queues[tenant]
            self._size -= dropped
            self._changed.notify_all()
            return dropped
