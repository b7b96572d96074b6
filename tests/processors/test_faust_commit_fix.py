from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import IntervalTree

from processors import faust_commit_fix

PARTITION = TP("zixly.job-events", 0)


def consumer(committed: int | None, acked: list[int]) -> Any:
    return SimpleNamespace(
        _acked=defaultdict(list, {PARTITION: list(acked)}),
        _acked_index=defaultdict(set, {PARTITION: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {PARTITION: committed}),
    )


def test_nothing_is_committed_past_a_record_that_is_still_in_flight() -> None:
    # Record 10 (the committed position) is still running; 11 and 12 finished first.
    assert faust_commit_fix._new_offset(consumer(10, [11, 12]), PARTITION) is None


def test_upstream_commits_past_it_which_is_why_the_fix_exists() -> None:
    # When an upgrade of faust-streaming makes this fail, the upstream bug is fixed and the module can go.
    assert faust_commit_fix.UPSTREAM_NEW_OFFSET(consumer(10, [11, 12]), PARTITION) == 13


def test_a_run_starting_at_the_committed_position_is_committed() -> None:
    state = consumer(10, [10, 11, 12, 14])
    assert faust_commit_fix._new_offset(state, PARTITION) == 13
    assert state._acked[PARTITION] == [14]


def test_offsets_that_will_never_arrive_count_as_done() -> None:
    state = consumer(10, [10, 13])
    state._gap[PARTITION].addi(11, 13)
    assert faust_commit_fix._new_offset(state, PARTITION) == 14


def test_a_partition_without_a_known_committed_position_commits_nothing() -> None:
    # A revoked partition: Faust forgot its position, and the jobs dropped from the queue are in flight no more.
    assert faust_commit_fix._new_offset(consumer(None, [0, 1, 3]), PARTITION) is None


def test_a_late_acknowledgement_on_a_partition_never_committed_commits_nothing_past_records_not_read_yet() -> None:
    # Record 36 ran under the worker's earlier hold on the partition and finished after the partition came back;
    # the new hold has not delivered records 0 to 35 yet, so nothing of theirs is in flight.
    assert faust_commit_fix._new_offset(consumer(0, [36]), PARTITION) is None
    # With no committed position, as upstream leaves a partition never committed, it would commit past them all.
    assert faust_commit_fix.UPSTREAM_NEW_OFFSET(consumer(None, [36]), PARTITION) == 37


def seeking_consumer(committed: dict[TP, int | None], first: dict[TP, int], reset: str = "earliest") -> Any:
    async def seek_to_committed() -> dict[TP, int | None]:
        return committed

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        return {tp: first[tp] for tp in partitions}

    sought: dict[TP, int] = {}

    async def _seek(tp: TP, offset: int) -> None:
        sought[tp] = offset

    return SimpleNamespace(
        seek_to_committed=seek_to_committed,
        earliest_offsets=earliest_offsets,
        _seek=_seek,
        sought=sought,
        app=SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset)),
        log=SimpleNamespace(warning=lambda *args: None),
        _read_offset=defaultdict(lambda: None),
        _committed_offset=defaultdict(lambda: None),
    )


async def test_a_partition_never_committed_starts_from_its_first_offset_as_its_committed_position() -> None:
    other = TP("zixly.job-events", 1)
    state = seeking_consumer({PARTITION: None, other: 12}, first={PARTITION: 5, other: 0})
    await faust_commit_fix._perform_seek(state)
    assert dict(state._committed_offset) == {PARTITION: 5, other: 12}
    assert state._read_offset[PARTITION] is None  # where to read is still the reset policy's


async def test_a_consumer_that_starts_at_the_end_of_a_partition_gets_no_committed_position_from_its_start() -> None:
    state = seeking_consumer({PARTITION: None}, first={PARTITION: 5}, reset="latest")
    await faust_commit_fix._perform_seek(state)
    assert state._committed_offset[PARTITION] is None


async def test_partitions_committed_at_zero_or_never_are_rewound_too_so_a_dropped_batch_is_read_again() -> None:
    # aiokafka's seek_to_committed seeks only partitions committed past 0; Faust runs this seek to re-read a batch
    # it dropped at a rebalance, so without the rewind those partitions went on after the dropped records.
    at_zero, further = TP("zixly.job-events", 1), TP("zixly.job-events", 2)
    state = seeking_consumer({PARTITION: None, at_zero: 0, further: 12}, first={PARTITION: 5})
    await faust_commit_fix._perform_seek(state)
    assert state.sought == {PARTITION: 5, at_zero: 0}


async def test_a_consumer_that_starts_at_the_end_is_not_rewound_to_the_start() -> None:
    state = seeking_consumer({PARTITION: None}, first={PARTITION: 5}, reset="latest")
    await faust_commit_fix._perform_seek(state)
    assert state.sought == {}
