import pytest

from kernel.log_reader import LogRecord
from projections.projector import Projector
from schemas.codec import encode
from schemas.events import Event
from tests.builders import job_lifecycle, sweep_results
from tests.projections.in_memory_store import InMemoryProjectionStore

TOPIC = "events"


def records(events: list[Event], partition: int = 0, first_offset: int = 0) -> list[LogRecord]:
    return [LogRecord(TOPIC, partition, first_offset + i, encode(event)[1]) for i, event in enumerate(events)]


async def test_a_batch_becomes_job_rows_events_and_a_checkpoint_in_one_commit() -> None:
    store = InMemoryProjectionStore()
    events = job_lifecycle()
    outcome = await Projector(store).apply(records(events))
    assert outcome.applied == 3
    assert store.commits == 1
    assert store.jobs[events[0].job_id].status == "COMPLETED"
    assert set(store.events) == {e.event_id for e in events}
    assert store.checkpoints == {(TOPIC, 0): 3}


async def test_a_redelivered_batch_changes_nothing() -> None:
    store = InMemoryProjectionStore()
    batch = records(job_lifecycle())
    await Projector(store).apply(batch)
    jobs, events, checkpoints = dict(store.jobs), dict(store.events), dict(store.checkpoints)
    outcome = await Projector(store).apply(batch)  # a restarted projector, fed the same records
    assert outcome.applied == 0
    assert (store.jobs, store.events, store.checkpoints) == (jobs, events, checkpoints)


async def test_a_restarted_projector_skips_records_below_its_checkpoint() -> None:
    store = InMemoryProjectionStore()
    batch = records(job_lifecycle())
    await Projector(store).apply(batch[:2])
    restarted = Projector(store)
    assert await restarted.load_checkpoints(TOPIC) == {0: 2}
    outcome = await restarted.apply(batch)
    assert (outcome.applied, outcome.skipped_duplicates) == (1, 2)


async def test_an_undecodable_record_is_skipped_and_the_partition_keeps_flowing() -> None:
    store = InMemoryProjectionStore()
    events = job_lifecycle()
    batch = [LogRecord(TOPIC, 0, 0, b"\x00garbage"), *records(events, first_offset=1)]
    outcome = await Projector(store).apply(batch)
    assert (outcome.applied, outcome.skipped_undecodable) == (3, 1)
    assert store.checkpoints == {(TOPIC, 0): 4}


async def test_a_failed_commit_leaves_checkpoints_where_they_were_so_the_batch_is_retried() -> None:
    store = InMemoryProjectionStore()
    projector = Projector(store)
    batch = records(job_lifecycle())
    store.fail_next_write = ConnectionError("database went away")
    with pytest.raises(ConnectionError):
        await projector.apply(batch)
    assert store.jobs == {}
    assert projector.checkpoint(TOPIC, 0) is None
    assert (await projector.apply(batch)).applied == 3


async def test_partitions_are_checkpointed_independently() -> None:
    store = InMemoryProjectionStore()
    await Projector(store).apply(records(job_lifecycle(), partition=0) + records(job_lifecycle()[:1], partition=3))
    assert store.checkpoints == {(TOPIC, 0): 3, (TOPIC, 3): 1}


async def test_sweep_results_become_one_row_per_backtest_and_a_redelivered_chunk_adds_none() -> None:
    store = InMemoryProjectionStore()
    request, started, _ = job_lifecycle()
    chunk = sweep_results(started, 0, [1.0, 2.0, 0.5])
    await Projector(store).apply(records([request, started, chunk]))
    assert len(store.sweep_results) == 3
    # The same chunk run again (a redelivery to another worker) is the same event with the same rows.
    again = sweep_results(started, 0, [1.0, 2.0, 0.5])
    await Projector(store).apply(records([again], first_offset=3))
    assert len(store.sweep_results) == 3
    assert len([e for e in store.events.values() if e.event.event_type == "SweepResultsRecorded"]) == 1
