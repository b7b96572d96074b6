import asyncio

import pytest

from processors.finished_requests import FinishedRequests


async def test_a_record_of_a_partition_not_yet_read_waits_for_its_tail_then_is_skipped_when_finished() -> None:
    finished = FinishedRequests()
    verdict = asyncio.ensure_future(finished.verdict(2, b"job-1"))
    await asyncio.sleep(0.05)
    assert not verdict.done(), "it waits: the tail of partition 2 has not been read yet"
    finished.by_partition[2] = {b"job-1"}
    finished.opened([2])
    assert await asyncio.wait_for(verdict, 1) == "finished"
    assert await finished.verdict(2, b"job-2") == "run"


async def test_a_record_whose_partition_is_revoked_while_it_waits_is_left_to_the_new_owner() -> None:
    finished = FinishedRequests()
    verdict = asyncio.ensure_future(finished.verdict(4, b"job-1"))
    await asyncio.sleep(0.01)
    finished.forget({4})
    assert await asyncio.wait_for(verdict, 1) == "revoked"


async def test_a_tail_that_cannot_be_read_still_opens_its_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    finished = FinishedRequests()

    async def broken(*_: object) -> int:
        raise OSError("the broker went away")

    monkeypatch.setattr(finished, "_learn", broken)
    with pytest.raises(OSError, match="went away"):
        await finished.learn(None, "group", [0, 1])  # type: ignore[arg-type]
    assert await asyncio.wait_for(finished.verdict(1, b"job"), 1) == "run"  # at least once, never stuck


async def test_a_revocation_waits_for_running_jobs_to_finish_but_not_for_long_ones() -> None:
    from processors.agents import Slots

    slots = Slots(runtime=None, waiting=None, finished=FinishedRequests())  # type: ignore[arg-type]
    quick = asyncio.ensure_future(asyncio.sleep(0.05))
    slow = asyncio.ensure_future(asyncio.sleep(60))
    elsewhere = asyncio.ensure_future(asyncio.sleep(0.2))
    slots.tasks.update({quick: 1, slow: 1, elsewhere: 2})
    assert await slots.settle({1}, patience=0.5) == (1, 1)
    assert quick.done()
    assert not slow.done(), "a long job goes on (its new owner may run it too, at least once)"
    assert not elsewhere.cancelled(), "a partition still held here is untouched"
    slow.cancel()
    await elsewhere


async def test_a_hold_on_a_partition_ends_when_it_is_revoked_even_if_it_comes_back() -> None:
    finished = FinishedRequests()
    finished.opened([3])
    tenure = finished.tenure(3)
    assert finished.still_holds(3, tenure)
    finished.forget({3})
    assert not finished.still_holds(3, tenure)
    finished.opened([3])
    assert not finished.still_holds(3, tenure), "a record read under the old hold is read again under the new one"
    assert finished.still_holds(3, finished.tenure(3))
    assert finished.tenure(5) is None
    assert not finished.still_holds(5, None)


async def test_settling_waits_only_for_the_revoked_partitions_tasks() -> None:
    from processors.agents import settle

    quick = asyncio.ensure_future(asyncio.sleep(0.05))
    elsewhere = asyncio.ensure_future(asyncio.sleep(5))
    running: dict[asyncio.Future[None], int] = {quick: 3, elsewhere: 4}
    assert await settle(running, {3}, patience=1) == (1, 0)
    assert not elsewhere.done()
    elsewhere.cancel()


async def test_a_sweep_whose_plan_is_its_last_step_in_the_tail_is_planned_with_the_chunks_recorded_since() -> None:
    finished = FinishedRequests()
    finished.by_partition[3] = {b"sweep", b"done"}
    finished.plans[3] = {b"sweep": {0, 4}}
    finished.opened([3])
    assert await finished.verdict(3, b"sweep") == "planned"
    assert finished.recorded_chunks(3, b"sweep") == {0, 4}
    assert await finished.verdict(3, b"done") == "finished"
    finished.forget({3})
    assert finished.recorded_chunks(3, b"sweep") == set()


async def test_a_job_that_ended_here_is_not_run_again_when_its_partition_comes_back_with_a_tail_that_missed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished = FinishedRequests()
    finished.opened([3])
    finished.ended_here(b"job-1")
    finished.forget({3})  # revoked, then assigned again with a tail read that does not hold job-1's outcome
    finished.by_partition[3] = set()
    finished.opened([3])
    assert await finished.verdict(3, b"job-1") == "finished"
    assert await finished.verdict(3, b"job-2") == "run"

    monkeypatch.setattr("processors.finished_requests.RAN_HERE", 2)
    finished.ended_here(b"job-2")
    finished.ended_here(b"job-3")
    assert await finished.verdict(3, b"job-1") == "run", "the oldest is forgotten past the bound"
    assert await finished.verdict(3, b"job-3") == "finished"
