import pytest

from kernel.patient_publisher import PatientPublisher
from kernel.publisher import Appended, LogUnavailable
from schemas.events import Event
from tests.builders import job_lifecycle
from tests.fakes import FakePublisher


class FlakyBroker(FakePublisher):
    def __init__(self, down_for: int) -> None:
        super().__init__()
        self.down_for = down_for
        self.calls = 0

    async def publish(self, event: Event) -> Appended:
        self.calls += 1
        if self.calls <= self.down_for:
            raise LogUnavailable("broker restarting (fake)")
        return await super().publish(event)


async def test_a_worker_waits_out_a_short_broker_outage() -> None:
    broker = FlakyBroker(down_for=2)
    await PatientPublisher(broker, patience_seconds=10).publish(job_lifecycle()[0])
    assert (broker.calls, len(broker.events)) == (3, 1)


async def test_past_its_patience_the_outage_surfaces() -> None:
    broker = FlakyBroker(down_for=1000)
    with pytest.raises(LogUnavailable):
        await PatientPublisher(broker, patience_seconds=0.5).publish(job_lifecycle()[0])
    assert broker.events == []
