import asyncio

import pytest

from kernel.group_commit import GroupCommit


class Recorder:
    """A write that takes as long as ``release`` makes it and remembers the groups it was given."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def double(self, items: list[int]) -> list[int | BaseException]:
        self.groups.append(items)
        await self.release.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 2 for i in items]


async def test_a_call_to_an_idle_store_is_written_at_once_on_its_own() -> None:
    recorder = Recorder()
    assert await GroupCommit(recorder.double).submit(4) == 8
    assert recorder.groups == [[4]]


async def test_calls_made_while_a_write_is_under_way_go_together_in_the_next_one() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.double, writers=1)
    recorder.release.clear()
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in (2, 4, 6)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await asyncio.gather(first, *rest) == [0, 4, 8, 12]
    assert recorder.groups == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_outcome_also_when_it_is_an_error() -> None:
    group = GroupCommit(Recorder().double)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert outcomes[::2] == [0, 4]
    assert [str(o) for o in outcomes[1::2]] == ["odd 1", "odd 3"]


async def test_a_group_is_never_larger_than_its_limit() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.double, max_batch=3, writers=1)
    assert await asyncio.gather(*(group.submit(i * 2) for i in range(8))) == [i * 4 for i in range(8)]
    assert max(len(g) for g in recorder.groups) == 3
    assert sorted(i for g in recorder.groups for i in g) == [i * 2 for i in range(8)]


async def test_a_failed_write_fails_its_whole_group_and_the_next_group_is_written() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ConnectionError("the database went away")
        return items

    group = GroupCommit(flaky, writers=1)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(group.submit(2))
    with pytest.raises(ConnectionError):
        await first
    assert await second == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_write_of_the_others() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.double, writers=1)
    recorder.release.clear()
    impatient = asyncio.create_task(group.submit(2))
    patient = asyncio.create_task(group.submit(4))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await patient == 8
    assert recorder.groups == [[2, 4]]


async def test_a_write_that_answers_for_too_few_items_fails_its_callers_instead_of_leaving_them_waiting() -> None:
    async def short(items: list[int]) -> list[int | BaseException]:
        return items[:1]

    group = GroupCommit(short, writers=1)
    outcomes = await asyncio.wait_for(asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True), 5)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
