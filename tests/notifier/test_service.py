import asyncio
import uuid

import pytest

from notifier.service import Notifier, NotifierHandler
from notifier.targets import TenantNotifications
from schemas.events import Event, JobCompleted, JobCompletedPayload


def completed(job_id: uuid.UUID) -> JobCompleted:
    return JobCompleted(
        tenant_id="acme",
        job_id=job_id,
        correlation_id="c",
        producer="test",
        payload=JobCompletedPayload(attempt=1, result={}, duration_ms=1),
    )


class SlowNotifier:
    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self.order: list[tuple[uuid.UUID, uuid.UUID]] = []

    def tenants_of_batch(self) -> None:
        return None

    async def handle(self, event: Event, tenants: object = None) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)
        self.order.append((event.job_id, event.event_id))
        self.running -= 1


async def test_many_jobs_are_notified_about_at_once_and_each_jobs_outcomes_in_log_order() -> None:
    notifier = SlowNotifier()
    service = NotifierHandler(notifier, concurrency=4)  # type: ignore[arg-type]
    jobs = [uuid.uuid4() for _ in range(10)]
    per_job = [[completed(job), completed(job)] for job in jobs]
    await service._notify(per_job)
    assert notifier.most_at_once == 4
    for events in per_job:
        handled = [event_id for job, event_id in notifier.order if job == events[0].job_id]
        assert handled == [event.event_id for event in events]


async def test_a_failed_notification_stops_the_batch_with_its_own_error() -> None:
    class Failing(SlowNotifier):
        async def handle(self, event: Event, tenants: object = None) -> None:
            raise ConnectionError("the broker went away")

    service = NotifierHandler(Failing())  # type: ignore[arg-type]
    with pytest.raises(ConnectionError, match="went away"):
        await service._notify([[completed(uuid.uuid4())]])


async def test_a_batch_reads_each_tenants_settings_once_however_many_of_its_outcomes_it_holds() -> None:
    class Directory:
        def __init__(self) -> None:
            self.reads: list[str] = []

        async def job(self, job_id: str) -> tuple[str, dict[str, str]] | None:
            raise AssertionError("nobody is notified: the job's row is not needed")

        async def tenant(self, tenant_id: str) -> TenantNotifications | None:
            self.reads.append(tenant_id)
            await asyncio.sleep(0.01)
            return TenantNotifications()

    directory = Directory()
    notifier = Notifier(directory, None, None, attempts=1, wait_for_projection=0)  # type: ignore[arg-type]
    service = NotifierHandler(notifier, concurrency=8)  # type: ignore[arg-type]
    await service._notify([[completed(uuid.uuid4())] for _ in range(20)])
    assert directory.reads == ["acme"]
    await service._notify([[completed(uuid.uuid4())]])
    assert directory.reads == ["acme", "acme"], "the next batch reads the settings afresh"
