"""Job changes pushed to screens: one Postgres listener per dashboard process, fanned out to every subscriber.

The projector announces the jobs each batch changed (``NOTIFY``, delivered at its commit). The listener reads those
jobs' rows once per notification, whoever is watching, and hands each subscriber the changes that pass its filter.
No client polls the database.
"""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from kernel.database import EVERY_TENANT_ROLES
from kernel.logging import get_logger

log = get_logger(__name__)

CHANNEL = "zixly_job_changes"  # projections.postgres_store.JOB_CHANGES_CHANNEL; the services share no code
_CHANGED_ROWS = """
SELECT id, tenant_id, job_type, status, attempts, progress, progress_message, error_type, error_message,
       created_at, started_at, completed_at, updated_at, log_partition, log_offset
FROM pipeline_jobs WHERE id = ANY(%s)
"""


# A screen that stops reading keeps at most this many changes waiting; beyond them it loses updates, never others.
QUEUED_CHANGES = 1_000


class TooManySubscribers(Exception):
    """The server, or this caller, already has as many streams open as it may."""


@dataclass(eq=False)  # compared by identity: each subscription is one screen
class Subscription:
    accepts: Callable[[dict[str, Any]], bool]
    owner: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUED_CHANGES))
    dropped: int = 0


class JobChangeListener:
    def __init__(self, dsn: str, max_subscribers: int = 500, max_per_owner: int = 20) -> None:
        self._dsn = dsn
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._max_subscribers = max_subscribers
        self._max_per_owner = max_per_owner
        self.listening = asyncio.Event()

    def subscribe(self, accepts: Callable[[dict[str, Any]], bool], owner: str) -> Subscription:
        """A new stream of ``owner`` (a user or a token); TooManySubscribers past the server's or the owner's limit."""
        if len(self._subscriptions) >= self._max_subscribers:
            raise TooManySubscribers(f"this server already pushes to {self._max_subscribers} screens")
        if sum(1 for s in self._subscriptions if s.owner == owner) >= self._max_per_owner:
            raise TooManySubscribers(f"{owner} already has {self._max_per_owner} streams open; close one first")
        subscription = Subscription(accepts, owner)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres went away: listen again once it is back
                self.listening.clear()
                log.warning("job change listener lost its connection", error=repr(exc)[:300])
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        async with (
            await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as listener,
            await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, row_factory=dict_row) as reader,
        ):
            # The listener reads every tenant's changes once and hands each subscriber only what it may see.
            await reader.execute(f"SET ROLE {EVERY_TENANT_ROLES['dashboard']}")
            await listener.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            async for notification in listener.notifies():
                if not self._subscriptions:
                    continue
                ids = [uuid.UUID(part) for part in notification.payload.split(",") if part]
                cursor = await reader.execute(_CHANGED_ROWS, (ids,))
                for row in await cursor.fetchall():
                    self._deliver(row)

    def _deliver(self, row: dict[str, Any]) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.accepts(row):
                continue
            try:
                subscription.queue.put_nowait(row)
            except asyncio.QueueFull:  # a screen that stopped reading loses updates, never the others
                subscription.dropped += 1
