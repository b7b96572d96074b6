import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from kernel.consumer_loop import ConsumerLoop
from processors.sweeps.collector_service import CollectorHandler, SweepCollector, collector_loop
from schemas.codec import encode
from schemas.events import (
    Event,
    JobCompleted,
    JobCompletedPayload,
    JobFailed,
    JobFailedPayload,
    SweepCallbackReceived,
    SweepCallbackReceivedPayload,
    SweepDispatched,
    SweepDispatchedPayload,
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
        self.cancelled: list[str] = []

    async def report(self, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
        self.progress.append(len(state["done"]))

    async def finish(self, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
        self.finished.append(str(event.job_id))

    async def cancel(self, event: Any, state: dict[str, Any]) -> None:
        self.cancelled.append(str(event.job_id))

    async def relay(self, event: SweepCallbackReceived, state: dict[str, Any]) -> None:
        self.relayed.append(event.payload.external_reference)


def collector(outcomes: Outcomes) -> SweepCollector:
    return SweepCollector(
        report=outcomes.report, finish=outcomes.finish, relay=outcomes.relay, cancel=outcomes.cancel, top_cells=3
    )


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
    failed = follow_up(
        plan,
        JobFailed,
        producer="w",
        payload=JobFailedPayload(
            attempt=1, error_type="DataChanged", error_message="x", retryable=False, duration_ms=1
        ),
    )
    await feed(target, [plan, failed, results(0, [1.0])])
    assert target.running(0) == 0
    assert outcomes.progress == []
    assert target.commit_offset(0, next_offset=3) == 3


async def test_a_collector_that_crashed_after_finishing_a_sweep_does_not_finish_it_again() -> None:
    first, second = Outcomes(), Outcomes()
    plan = planned()
    log: list[Event] = [plan, results(0, [1.0]), results(1, [2.0])]
    crashed = collector(first)
    await feed(crashed, log)
    completed = follow_up(
        plan, JobCompleted, producer="w", payload=JobCompletedPayload(attempt=1, result={}, duration_ms=1)
    )
    log.append(completed)  # appended, but the collector died before committing past the plan
    successor = collector(second)
    successor.ended_ahead(0, {plan.job_id: len(log) - 1})
    await feed(successor, log)
    assert first.finished == [str(plan.job_id)]
    assert second.finished == [], "the log already holds its JobCompleted"
    assert second.progress == []
    assert successor.commit_offset(0, next_offset=len(log)) == len(log)


async def test_a_sweep_planned_again_after_an_end_is_followed() -> None:
    outcomes = Outcomes()
    target = collector(outcomes)
    plan = planned()
    target.ended_ahead(0, {plan.job_id: 3})
    await target.apply(0, 7, plan)
    assert target.running(0) == 1, "an end before the plan is an earlier run's"


async def test_a_plan_seen_twice_keeps_its_first_position() -> None:
    target = collector(Outcomes())
    plan: SweepPlanned = planned()
    await target.apply(0, 5, plan)
    await target.apply(0, 9, plan)
    assert target.commit_offset(0, next_offset=10) == 5


def dispatched(reference: str = "ext-1") -> SweepDispatched:
    plan = planned()
    return follow_up(
        plan,
        SweepDispatched,
        producer="w",
        payload=SweepDispatchedPayload(
            attempt=1,
            service_url="http://svc",
            external_reference=reference,
            backtest_count=2,
            data=[],
            parameters={"split": None},
        ),
    )


def called_back(reference: str, part: int = 0, parts: int = 1) -> SweepCallbackReceived:
    return follow_up(
        planned(),
        SweepCallbackReceived,
        producer="receiver",
        payload=SweepCallbackReceivedPayload(
            external_reference=reference, status="completed", part_index=part, part_count=parts
        ),
    )


async def test_a_callback_for_the_dispatched_reference_is_relayed_and_another_is_not() -> None:
    outcomes = Outcomes()
    await feed(collector(outcomes), [dispatched("ext-1"), called_back("ext-2"), called_back("ext-1")])
    assert outcomes.relayed == ["ext-1"]


async def test_an_external_sweep_completes_when_all_parts_of_its_callback_are_in() -> None:
    outcomes = Outcomes()
    target = collector(outcomes)
    part = results(0, [1.0])
    later = results(1, [2.0])
    # The relayed parts say how many there are; the dispatch could not know.
    parts = [
        part.model_copy(update={"payload": part.payload.model_copy(update={"chunk_count": 2})}),
        later.model_copy(update={"payload": later.payload.model_copy(update={"chunk_count": 2})}),
    ]
    await feed(target, [dispatched(), parts[0]])
    assert outcomes.finished == []
    await target.apply(0, 2, parts[1])
    assert len(outcomes.finished) == 1


TP = TopicPartition("zixly.job-events", 0)


class RebalancingConsumer:
    """Hands out one batch and then nothing; ``rebalance()`` revokes and re-assigns its one partition, as a
    coordinator does in the background while the collector is awaiting something."""

    def __init__(self, log: list[Event]) -> None:
        self.batches = [
            [
                SimpleNamespace(
                    topic=TP.topic,
                    partition=TP.partition,
                    offset=offset,
                    value=value,
                    headers=headers,
                    key=None,
                    timestamp=0,
                )
                for offset, (_, value, headers) in enumerate(map(encode, log))
            ]
        ]
        self.commits: list[int] = []
        self.seeks: list[int] = []
        self.listener: Any = None
        self.assigning: asyncio.Future[None] | None = None
        self.service: ConsumerLoop | None = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        # As aiokafka does: the partitions are assigned, and may be fetched from, while the listener still runs.
        self.assigning = asyncio.ensure_future(self.listener.on_partitions_assigned({TP}))

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits[-1] if self.commits else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks.append(0)

    async def stop(self) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.batches:
            return {TP: self.batches.pop(0)}
        assert self.service is not None
        self.service.stop()
        return {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append(offsets[TP].offset)

    async def rebalance(self) -> None:
        await self.listener.on_partitions_revoked({TP})
        await self.listener.on_partitions_assigned({TP})


async def test_a_rebalance_in_the_middle_of_a_batch_never_commits_past_a_running_sweep() -> None:
    consumer = RebalancingConsumer([planned(chunks=3), results(0, [1.0]), results(1, [2.0])])
    outcomes = Outcomes()

    rebalances: list[asyncio.Future[None]] = []

    async def report_during_a_rebalance(event: SweepResultsRecorded, state: dict[str, Any]) -> None:
        await outcomes.report(event, state)
        if len(outcomes.progress) == 1:
            # As aiokafka does: the group's coordinator calls the listener from a task of its own.
            rebalances.append(asyncio.ensure_future(consumer.rebalance()))
            await asyncio.sleep(0.01)

    target = SweepCollector(
        report=report_during_a_rebalance,
        finish=outcomes.finish,
        relay=outcomes.relay,
        cancel=outcomes.cancel,
        top_cells=3,
    )
    service = collector_loop(consumer, target, TP.topic)  # type: ignore[arg-type]
    consumer.service = service
    await service.run()
    await asyncio.gather(*rebalances)
    # The batch's tail would have met a forgotten sweep; committing it would have lost the sweep.
    assert all(offset == 0 for offset in consumer.commits)


async def test_a_revocation_waits_for_the_event_being_applied_so_a_finished_sweep_is_in_the_log_first() -> None:
    rebalance = CollectorHandler(collector(Outcomes()), ended_ahead=None)
    order: list[str] = []

    async def finishing() -> None:
        async with rebalance.applying:
            await asyncio.sleep(0.05)
            order.append("sweep finished")

    step = asyncio.ensure_future(finishing())
    await asyncio.sleep(0)
    await rebalance.revoked([TP.partition])
    order.append("partitions given up")
    await step
    assert order == ["sweep finished", "partitions given up"]


async def test_records_fetched_while_the_assignment_is_learnt_wait_for_it() -> None:
    plan = planned(chunks=2)
    completed = follow_up(
        plan, JobCompleted, producer="w", payload=JobCompletedPayload(attempt=1, result={}, duration_ms=1)
    )
    consumer = RebalancingConsumer([plan, results(0, [1.0]), results(1, [2.0]), completed])
    outcomes = Outcomes()

    async def slowly_read_ended_ahead(partitions: list[int]) -> dict[int, dict[Any, int]]:
        await asyncio.sleep(0.05)
        return {0: {plan.job_id: 3}}

    service = collector_loop(
        consumer,
        collector(outcomes),
        TP.topic,  # type: ignore[arg-type]
        ended_ahead=slowly_read_ended_ahead,
    )
    consumer.service = service
    await service.run()
    assert outcomes.finished == [], "the log already held the sweep's JobCompleted"
