"""Accepting a job: append its JobRequested durably, once per idempotency key."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from kernel.logging import get_logger
from kernel.publisher import Appended, EventPublisher, LogUnavailable
from producers.errors import ApiError
from producers.receipts import Receipt, ReceiptStore, request_fingerprint
from schemas.events import Event, JobRequested

log = get_logger(__name__)

_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Accepted:
    appended: Appended
    replayed: bool
    """True when an earlier delivery of the same request was accepted and nothing new was appended."""


async def append(publisher: EventPublisher, event: Event) -> Appended:
    try:
        return await publisher.publish(event)
    except LogUnavailable as exc:
        log.warning("event not accepted: log unavailable", error=str(exc), event_type=event.event_type)
        raise ApiError(
            503,
            "broker_unavailable",
            "the event log did not acknowledge the event; nothing was accepted, retry later",
            headers={"Retry-After": "5"},
        ) from exc


async def _no_limit() -> None:
    return None


class JobAcceptance:
    def __init__(self, publisher: EventPublisher, receipts: ReceiptStore, publish_timeout: float) -> None:
        self._publisher = publisher
        self._receipts = receipts
        self._publish_timeout = publish_timeout

    async def accept(
        self, event: JobRequested, idempotency_key: str | None, admit: Callable[[], Awaitable[None]] = _no_limit
    ) -> Accepted:
        """``admit`` runs before a new job is appended (not for a redelivery answered from its receipt) and refuses
        it by raising (a tenant's quota)."""
        if idempotency_key is None:
            await admit()
            return Accepted(await append(self._publisher, event), replayed=False)
        try:
            return await self._accept_once(event, idempotency_key, admit)
        except SQLAlchemyError as exc:
            log.warning("idempotency store unavailable", error=repr(exc)[:300])
            raise ApiError(
                503,
                "store_unavailable",
                "cannot check the idempotency key now; nothing was accepted, retry later",
                headers={"Retry-After": "5"},
            ) from exc

    async def _accept_once(self, event: JobRequested, key: str, admit: Callable[[], Awaitable[None]]) -> Accepted:
        tenant = event.tenant_id
        mine = Receipt(
            request_fingerprint(event),
            event.job_id,
            event.event_id,
            event.correlation_id,
            "pending",
            None,
            None,
            datetime.now(UTC),
        )
        deadline = time.monotonic() + self._publish_timeout + 1.0
        while (existing := await self._receipts.claim(tenant, key, mine)) is not None:
            if existing.request_sha256 != mine.request_sha256:
                message = f"Idempotency-Key {key!r} was used for a different request (job {existing.job_id})"
                raise ApiError(409, "idempotency_conflict", message)
            if existing.appended:
                where = Appended("", existing.log_partition or 0, existing.log_offset or 0)
                return Accepted(where, replayed=True)
            if time.monotonic() > deadline:
                if self._stale(existing):
                    break  # its receiver died between claiming and appending: append the same event now
                raise ApiError(
                    409,
                    "request_in_progress",
                    f"a delivery with Idempotency-Key {key!r} is being accepted right now; retry",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(_POLL_SECONDS)  # an identical delivery is appending it: wait for its answer
        try:
            await admit()
            appended = await append(self._publisher, event)
        except ApiError:
            await self._receipts.release(tenant, key)
            raise
        await self._receipts.mark_appended(tenant, key, appended.partition, appended.offset)
        return Accepted(appended, replayed=False)

    def _stale(self, receipt: Receipt) -> bool:
        age = (datetime.now(UTC) - receipt.created_at).total_seconds()
        return age > 3 * self._publish_timeout
