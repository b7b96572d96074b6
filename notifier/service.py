"""The notifier: reads finished jobs off the event stream, tells whoever asked to be told, records what it did.

It is a consumer group of its own, so a slow mail server never holds up a job. Each delivery is retried a few
times with backoff; a delivery that still fails is recorded as NotificationFailed and the job is untouched. Events
it appends have ids derived from job, outcome, channel and address; a batch read again after a crash skips the
deliveries whose event is already in the log (notifier/delivered.py), and each delivery carries
that id as its key (Idempotency-Key, Message-ID) for the one in flight at the crash.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from kernel.consumer_loop import Batch, Commits, ConsumerLoop, Positions
from kernel.logging import bound_contextvars, get_logger
from kernel.publisher import EventPublisher
from notifier.channels import Channels, DeliveryFailed, redacted
from notifier.delivered import DeliveredNotifications
from notifier.targets import OUTCOMES, TenantNotifications, targets_for
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import (
    Emitter,
    Event,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
    derived_event_id,
)
from schemas.identifiers import side_effect_key

log = get_logger(__name__)
emit = Emitter("notifier")
LEARN_PATIENCE_SECONDS = 120.0


class JobDirectory(Protocol):
    async def job(self, job_id: str) -> tuple[str, dict[str, str]] | None:
        """(job type, metadata) of a projected job."""
        ...

    async def tenant(self, tenant_id: str) -> TenantNotifications | None: ...


class TenantsOfBatch:
    """Each tenant's notification settings, read once for a batch of outcomes: at 200 outcomes a second, one query
    per outcome was most of the notifier's time. A batch sees the settings as they were when it was handled."""

    def __init__(self, directory: JobDirectory) -> None:
        self._directory = directory
        self._read: dict[str, asyncio.Future[TenantNotifications | None]] = {}

    async def tenant(self, tenant_id: str) -> TenantNotifications | None:
        if tenant_id not in self._read:
            self._read[tenant_id] = asyncio.ensure_future(self._directory.tenant(tenant_id))
        return await asyncio.shield(self._read[tenant_id])


class Notifier:
    def __init__(
        self,
        directory: JobDirectory,
        channels: Channels,
        publisher: EventPublisher,
        attempts: int,
        wait_for_projection: float,
        delivered: DeliveredNotifications | None = None,
    ) -> None:
        self.delivered = delivered or DeliveredNotifications()
        self._directory = directory
        self._channels = channels
        self._publisher = publisher
        self._attempts = attempts
        self._wait = wait_for_projection

    def tenants_of_batch(self) -> TenantsOfBatch:
        return TenantsOfBatch(self._directory)

    async def handle(self, event: Event, tenants: TenantsOfBatch | None = None) -> None:
        with bound_contextvars(
            job_id=str(event.job_id), tenant_id=event.tenant_id, correlation_id=event.correlation_id
        ):
            # The tenant's settings first: most outcomes notify no one, and need neither the job's row nor its wait.
            targets = targets_for(event.event_type, await (tenants or self._directory).tenant(event.tenant_id))
            if not targets:
                return
            job = await self._job(str(event.job_id))
            if job is None:
                log.warning("no projected job to notify about", outcome=event.event_type)
                return
            job_type, _ = job
            subject = f"[zixly] {job_type} job {event.job_id} {OUTCOMES[event.event_type].replace('_', ' ')}"
            text = _describe(event)
            for target in targets:
                fact = f"notification:{event.event_type}:{target.channel}:{target.address}"
                if self.delivered.recorded(derived_event_id(event.job_id, fact)):
                    log.info("notification not delivered again: the log records it", channel=target.channel)
                    continue
                attempts = 0
                try:
                    async for attempt in AsyncRetrying(
                        retry=retry_if_exception_type(DeliveryFailed),
                        stop=stop_after_attempt(self._attempts),
                        wait=wait_exponential(multiplier=0.2, max=5),
                        reraise=True,
                    ):
                        with attempt:
                            attempts += 1
                            await self._channels.deliver(
                                target, subject, text, event.tenant_id, side_effect_key(event.job_id, fact)
                            )
                except DeliveryFailed as exc:
                    log.warning("notification failed", channel=target.channel, error=str(exc)[:300])
                    await self._publisher.publish(
                        emit(
                            event,
                            NotificationFailed,
                            fact=fact,
                            payload=NotificationFailedPayload(
                                channel=target.channel,
                                target=redacted(target),
                                outcome=event.event_type,
                                attempts=attempts,
                                error=str(exc)[:2000],
                            ),
                        )
                    )
                    continue
                await self._publisher.publish(
                    emit(
                        event,
                        NotificationSent,
                        fact=fact,
                        payload=NotificationSentPayload(
                            channel=target.channel, target=redacted(target), outcome=event.event_type, attempts=attempts
                        ),
                    )
                )
                log.info("notification delivered", channel=target.channel, outcome=event.event_type, attempts=attempts)

    async def _job(self, job_id: str) -> tuple[str, dict[str, str]] | None:
        # The outcome can be read before the projector has written the job's row; it will be there in a moment.
        deadline = time.monotonic() + self._wait
        while (job := await self._directory.job(job_id)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return job


def _describe(event: Event) -> str:
    payload: Mapping[str, Any] = event.payload.model_dump(mode="json")
    detail = payload.get("error_message") or payload.get("reason") or ""
    return f"{event.event_type} at {event.occurred_at.isoformat()} (tenant {event.tenant_id}). {detail}".strip()


class NotifierHandler:
    """The notifier as a handler of the consumer loop: on assignment it learns which notifications the log already
    records; a batch is committed once every outcome in it has been told."""

    def __init__(
        self,
        notifier: Notifier,
        learn: Callable[[list[int]], Awaitable[object]] | None = None,
        concurrency: int = 32,
    ) -> None:
        self._concurrency = concurrency
        self._notifier = notifier
        self._learn = learn

    async def assigned(self, partitions: list[int]) -> Positions:
        if self._learn is not None:
            try:
                await self._learn(partitions)
            except Exception as exc:  # without it a repeated batch may notify twice, which at-least-once allows
                log.warning("could not learn the notifications already recorded", error=repr(exc)[:300])
        return {}

    async def revoked(self, partitions: list[int]) -> None:
        return None

    async def rewind(self, partitions: list[int]) -> Positions:
        return {}  # what was delivered is in the log and in ``delivered``: the commits are where to start

    async def handle(self, batch: Batch) -> Commits:
        outcomes: dict[uuid.UUID, list[Event]] = {}
        for record in batch.records():
            if event_type_of(record.headers) not in OUTCOMES or record.value is None:
                continue
            try:
                event = decode(record.value)
            except UndecodableEvent:
                continue
            outcomes.setdefault(event.job_id, []).append(event)
        await self._notify(list(outcomes.values()))
        return batch.ends()

    async def _notify(self, per_job: list[list[Event]]) -> None:
        """Notifies about many jobs at once (one after another, a notifier fell behind 40 outcomes a second in the
        chaos loop), each job's outcomes in log order. A failure stops the batch, which is then not committed."""
        limit = asyncio.Semaphore(self._concurrency)
        tenants = self._notifier.tenants_of_batch()

        async def one_job(events: list[Event]) -> None:
            async with limit:
                for event in events:
                    await self._notifier.handle(event, tenants)

        try:
            async with asyncio.TaskGroup() as group:
                for events in per_job:
                    group.create_task(one_job(events))
        except ExceptionGroup as failures:
            raise failures.exceptions[0] from failures


def notifier_loop(
    consumer: AIOKafkaConsumer,
    notifier: Notifier,
    topic: str,
    learn: Callable[[list[int]], Awaitable[object]] | None = None,
    concurrency: int = 32,
) -> ConsumerLoop:
    # A tail not learnt by the patience is read again rather than notified twice.
    handler = NotifierHandler(notifier, learn, concurrency)
    return ConsumerLoop("notifier", consumer, topic, handler, max_records=500, settle_patience=LEARN_PATIENCE_SECONDS)
