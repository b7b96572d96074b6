import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from kernel.consumer_loop import Batch, Commits, ConsumerLoop, Positions

TOPIC = "zixly.job-events"


def record(partition: int, offset: int) -> SimpleNamespace:
    return SimpleNamespace(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        value=b"{}",
        headers=[("event_type", b"x")],
        key=None,
        timestamp=0,
    )


class Consumer:
    """aiokafka's consumer as the loop uses it: batches handed out in turn, then the loop is stopped. ``start``
    assigns the partitions; with ``fetch_while_assigning``, as aiokafka may, it returns while the listener still
    runs in a task of its own."""

    def __init__(self, batches: list[dict[int, list[SimpleNamespace]]], partitions: tuple[int, ...] = (0,)) -> None:
        self.batches = batches
        self.partitions = {TopicPartition(TOPIC, p) for p in partitions}
        self.commits: list[dict[int, int]] = []
        self.committed_offsets: dict[int, int] = {}
        self.seeks: list[tuple[int, int | None]] = []
        self.listener: Any = None
        self.assigning: asyncio.Future[None] | None = None
        self.loop: ConsumerLoop | None = None
        self.stopped = False
        self.before_fetch: list[Any] = []
        self.refuse_commits = False
        self.fetch_while_assigning = False

    def subscribe(self, topics: list[str], listener: Any) -> None:
        assert topics == [TOPIC]
        self.listener = listener

    async def start(self) -> None:
        self.assigning = asyncio.ensure_future(self.listener.on_partitions_assigned(set(self.partitions)))
        if not self.fetch_while_assigning:
            await self.assigning

    async def stop(self) -> None:
        self.stopped = True

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def highwater(self, tp: TopicPartition) -> int | None:
        return 10

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp.partition)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, None))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[SimpleNamespace]]:
        if self.before_fetch:
            await self.before_fetch.pop(0)()
        if self.batches:
            return {TopicPartition(TOPIC, p): records for p, records in self.batches.pop(0).items()}
        assert self.loop is not None
        self.loop.stop()
        return {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.refuse_commits:
            raise CommitFailedError("the group has rebalanced")
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})

    async def rebalance(self) -> None:
        await self.listener.on_partitions_revoked(set(self.partitions))
        await self.listener.on_partitions_assigned(set(self.partitions))


class Handler:
    def __init__(self, positions: Positions | None = None, learning: float = 0.0) -> None:
        self.positions = positions or {}
        self.learning = learning
        self.calls: list[str] = []
        self.handled: list[list[tuple[int, int]]] = []
        self.fail_first = False

    async def assigned(self, partitions: list[int]) -> Positions:
        await asyncio.sleep(self.learning)
        self.calls.append(f"assigned {partitions}")
        return self.positions

    async def revoked(self, partitions: list[int]) -> None:
        self.calls.append(f"revoked {partitions}")

    async def rewind(self, partitions: list[int]) -> Positions:
        self.calls.append(f"rewind {partitions}")
        return {}

    async def handle(self, batch: Batch) -> Commits:
        self.calls.append("handle")
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("the store went away")
        self.handled.append([(r.partition, r.offset) for r in batch.records()])
        return batch.ends()


def loop_over(consumer: Consumer, handler: Handler, **options: Any) -> ConsumerLoop:
    loop = ConsumerLoop("test", consumer, TOPIC, handler, max_records=100, **options)  # type: ignore[arg-type]
    consumer.loop = loop
    return loop


async def test_records_fetched_while_their_assignment_is_learnt_are_read_again_once_it_is() -> None:
    fetched = {0: [record(0, 0), record(0, 1)]}
    consumer = Consumer([fetched, fetched])
    consumer.fetch_while_assigning = True
    handler = Handler(learning=0.05)
    await loop_over(consumer, handler).run()
    assert handler.calls == ["assigned [0]", "rewind [0]", "handle"]
    assert handler.handled == [[(0, 0), (0, 1)]]


async def test_what_the_handler_returns_is_committed_and_the_consumer_is_stopped_at_the_end() -> None:
    consumer = Consumer([{0: [record(0, 0)], 1: [record(1, 4), record(1, 5)]}], partitions=(0, 1))
    await loop_over(consumer, Handler()).run()
    assert consumer.commits == [{0: 1, 1: 6}]
    assert consumer.stopped


async def test_the_positions_the_handler_gives_on_assignment_are_sought_and_none_means_the_beginning() -> None:
    consumer = Consumer([], partitions=(0, 1, 2))
    await loop_over(consumer, Handler(positions={0: 42, 1: None})).run()
    assert sorted(consumer.seeks, key=str) == sorted([(0, 42), (1, None)], key=str), "partition 2 keeps the commit"


async def test_a_batch_fetched_across_a_rebalance_is_not_handled_but_read_again_from_the_commits() -> None:
    consumer = Consumer([{0: [record(0, 7)]}, {0: [record(0, 3)]}])
    consumer.committed_offsets = {0: 3}
    consumer.before_fetch = [consumer.rebalance]
    handler = Handler()
    await loop_over(consumer, handler).run()
    assert handler.handled == [[(0, 3)]], "offset 7 was fetched from a position the rebalance reset"
    assert "rewind [0]" in handler.calls
    assert (0, 3) in consumer.seeks


async def test_a_batch_still_running_when_a_rebalance_begins_commits_nothing() -> None:
    consumer = Consumer([{0: [record(0, 0)]}])
    handler = Handler()

    async def handle_through_a_rebalance(batch: Batch) -> Commits:
        await consumer.rebalance()
        assert not batch.current()
        return batch.ends()

    handler.handle = handle_through_a_rebalance  # type: ignore[method-assign]
    await loop_over(consumer, handler).run()
    assert consumer.commits == []


async def test_a_commit_refused_by_a_rebalancing_group_is_skipped_not_fatal() -> None:
    consumer = Consumer([{0: [record(0, 0)]}, {0: [record(0, 1)]}])
    consumer.refuse_commits = True
    handler = Handler()
    await loop_over(consumer, handler).run()
    assert handler.handled == [[(0, 0)], [(0, 1)]]


async def test_a_failed_batch_ends_the_loop_with_its_error_unless_failed_batches_are_retried() -> None:
    consumer = Consumer([{0: [record(0, 0)]}])
    handler = Handler()
    handler.fail_first = True
    with pytest.raises(ConnectionError, match="went away"):
        await loop_over(consumer, handler).run()
    assert consumer.stopped


async def test_a_retried_batch_is_rewound_and_read_again() -> None:
    consumer = Consumer([{0: [record(0, 0)]}, {0: [record(0, 0)]}])
    consumer.committed_offsets = {0: 0}
    handler = Handler()
    handler.fail_first = True
    await loop_over(consumer, handler, retry_failed_batches=True, retry_after=0).run()
    assert handler.calls[-3:] == ["handle", "rewind [0]", "handle"]
    assert handler.handled == [[(0, 0)]]
    assert consumer.seeks[-1] == (0, 0)


async def test_an_assignment_not_learnt_within_the_patience_is_read_again_rather_than_handled() -> None:
    consumer = Consumer([{0: [record(0, 5)]}])
    consumer.fetch_while_assigning = True
    handler = Handler(learning=0.2)
    await loop_over(consumer, handler, settle_patience=0.01).run()
    assert consumer.assigning is not None
    await consumer.assigning
    assert handler.handled == []
    assert "rewind [0]" in handler.calls
