import asyncio

import pytest

from processors.fair_queue import FairQueue


async def test_tenants_are_served_in_turn_whatever_the_order_they_arrived_in() -> None:
    queue: FairQueue[str] = FairQueue(100)
    for number in range(5):
        await queue.put("a", f"a{number}")
    await queue.put("b", "b0")
    await queue.put("c", "c0")
    served = [(await queue.get())[1] for _ in range(7)]
    assert served == ["a0", "b0", "c0", "a1", "a2", "a3", "a4"]


async def test_a_full_queue_holds_the_reader_until_a_slot_takes_one() -> None:
    queue: FairQueue[int] = FairQueue(2)
    await queue.put("a", 1)
    await queue.put("a", 2)
    third = asyncio.ensure_future(queue.put("b", 3))
    await asyncio.sleep(0.05)
    assert not third.done()
    assert (await queue.get())[1] == 1
    await asyncio.wait_for(third, 1)
    assert queue.depths() == {"a": 1, "b": 1}


async def test_dropping_a_revoked_partitions_items_keeps_the_others_in_order() -> None:
    queue: FairQueue[tuple[int, str]] = FairQueue(10)
    for item in [(0, "a0"), (1, "a1"), (0, "a2")]:
        await queue.put("a", item)
    await queue.put("b", (0, "b0"))
    assert await queue.drop(lambda item: item[0] == 0) == 3
    assert len(queue) == 1
    assert (await queue.get()) == ("a", (1, "a1"))


@pytest.mark.parametrize("waiting", [5_000])
async def test_another_tenants_job_waits_one_turn_however_long_the_first_ones_backlog(waiting: int) -> None:
    queue: FairQueue[int] = FairQueue(waiting + 1)
    for number in range(waiting):
        await queue.put("a", number)
    await queue.get()
    await queue.put("b", -1)
    assert [await queue.get() for _ in range(2)] == [("a", 1), ("b", -1)]


async def test_a_slot_acknowledges_without_running_a_job_whose_outcome_is_in_the_log_or_running_here() -> None:
    from types import SimpleNamespace
    from typing import Any

    from processors.agents import Slots
    from processors.finished_requests import FinishedRequests

    acked: list[bytes] = []
    waiting: FairQueue[tuple[Any, Any]] = FairQueue(10)
    finished = FinishedRequests({3: {b"done-job"}})
    finished.opened([3])
    slots = Slots(runtime=None, waiting=waiting, finished=finished)  # type: ignore[arg-type]
    slots.running.add(b"busy-job")
    for key in (b"done-job", b"busy-job"):
        event = SimpleNamespace(key=key, message=SimpleNamespace(partition=3))

        async def done(key: bytes = key) -> None:
            acked.append(key)

        await waiting.put("acme", (event, done))
    task = asyncio.ensure_future(slots.serve())  # a job it would run has no runtime: it would fail the test
    while len(acked) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    assert acked == [b"done-job", b"busy-job"]
