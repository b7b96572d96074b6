from typing import Any

from processors.sweeps.collector_service import SweepCollector
from schemas.events import (
    Event,
    JobFailed,
    JobFailedPayload,
    SweepCallbackReceived,
    SweepPlanned,
    SweepResultsRecorded,
    follow_up,
)
from tests.processors.sweeps.test_collector import planned, results


class Outcomes:
    def __init__(self) -> None:
        self.progress: list[int] = []
        self.finished: list[str] = []
        self.relayed: list[str] = []

    async def report(self, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
        self.progress.append(len(state["done"]))

    async def finish(self, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
        self.finished.append(str(event.job_id))

    async def relay(self, event: SweepCallbackReceived, state: dict[str, Any]) -> None:
        self.relayed.append(event.payload.external_reference)


def collector(outcomes: Outcomes) -> SweepCollector:
    return SweepCollector(report=outcomes.report, finish=outcomes.finish, relay=outcomes.relay, top_cells=3)


async def feed(target: SweepCollector, log: list[Event], start: int = 0) -> None:
    for offset in range(start, len(log)):
        await target.apply(0, offset, log[offset])


async def test_the_sweep_finishes_once_its_last_chunk_is_folded() -> None:
    outcomes = Outcomes()
    log: list[Event] = [planned(), results(0, [1.0]), results(1, [2.0])]
    await feed(collector(outcomes), log)
    assert outcomes.progress == [1, 2]
    assert len(outcomes.finished) == 1


async def test_commits_stop_at_the_plan_of_the_oldest_running_sweep() -> None:
    outcomes = Outcomes()
    target = collector(outcomes)
    log: list[Event] = [planned(), results(0, [1.0])]
    await feed(target, log)
    assert target.commit_offset(0, next_offset=2) == 0
    await target.apply(0, 2, results(1, [2.0]))
    assert target.commit_offset(0, next_offset=3) == 3


async def test_a_collector_that_reads_again_from_its_commit_arrives_at_the_same_state() -> None:
    first, second = Outcomes(), Outcomes()
    log: list[Event] = [planned(), results(0, [1.0])]
    crashed = collector(first)
    await feed(crashed, log)
    restart_at = crashed.commit_offset(0, next_offset=len(log))
    log.append(results(1, [2.0]))
    await feed(collector(second), log, start=restart_at)
    assert second.progress == [1, 2]
    assert len(second.finished) == 1


async def test_a_sweep_failed_elsewhere_is_dropped_and_no_longer_holds_commits_back() -> None:
    outcomes = Outcomes()
    target = collector(outcomes)
    plan = planned()
    failed = follow_up(plan, JobFailed, producer="w", payload=JobFailedPayload(
        attempt=1, error_type="DataChanged", error_message="x", retryable=False, duration_ms=1))  # fmt: skip
    await feed(target, [plan, failed, results(0, [1.0])])
    assert target.running(0) == 0
    assert outcomes.progress == []
    assert target.commit_offset(0, next_offset=3) == 3


async def test_a_plan_seen_twice_keeps_its_first_position() -> None:
    target = collector(Outcomes())
    plan: SweepPlanned = planned()
    await target.apply(0, 5, plan)
    await target.apply(0, 9, plan)
    assert target.commit_offset(0, next_offset=10) == 5
