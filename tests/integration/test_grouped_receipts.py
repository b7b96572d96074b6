"""Receipts written in groups, on Postgres, as the receiver writes them (its own login, one tenant per transaction)."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from kernel.database import make_async_engine
from kernel.settings import Settings
from producers.grouped_receipts import GroupedReceiptStore
from producers.receipts import Receipt
from tests.integration.isolated import isolated_read_model


@pytest.fixture(scope="module")
def fresh(stack: Settings) -> Iterator[Settings]:
    with isolated_read_model(stack) as settings:
        yield settings


def receipt(sha: str = "a" * 64) -> Receipt:
    job_id = uuid.uuid4()
    return Receipt(sha, job_id, uuid.uuid4(), str(job_id), "pending", None, None, datetime.now(UTC))


async def with_store(settings: Settings, work: Any) -> tuple[Any, list[str]]:
    """``work(store)``'s result and the statements the receiver's login sent meanwhile."""
    engine = make_async_engine(settings, pool_size=2, service="receiver")
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement.split()[0].upper()),
    )
    try:
        return await work(GroupedReceiptStore(engine)), statements
    finally:
        await engine.dispose()


def test_concurrent_claims_are_inserted_together_and_each_learns_it_won(fresh: Settings) -> None:
    keys = [f"k-{uuid.uuid4().hex}" for _ in range(50)]

    async def work(store: GroupedReceiptStore) -> list[Receipt | None]:
        return await asyncio.gather(*(store.claim("acme", key, receipt()) for key in keys))

    outcomes, statements = asyncio.run(with_store(fresh, work))
    assert outcomes == [None] * 50
    assert 1 <= statements.count("INSERT") < 50


def test_a_key_delivered_twice_in_one_group_is_won_once_and_the_second_finds_the_first_receipt(
    fresh: Settings,
) -> None:
    key = f"k-{uuid.uuid4().hex}"
    first, same, other = receipt(), receipt(), receipt("b" * 64)

    async def work(store: GroupedReceiptStore) -> list[Receipt | None]:
        return await asyncio.gather(
            store.claim("acme", key, first), store.claim("acme", key, same), store.claim("acme", key, other)
        )

    (won, again, conflicting), _ = asyncio.run(with_store(fresh, work))
    assert won is None
    assert again is not None
    assert (again.job_id, again.state) == (first.job_id, "pending")
    assert conflicting is not None
    assert conflicting.request_sha256 != other.request_sha256


def test_a_key_claimed_earlier_is_found_with_its_mark_and_another_tenant_may_use_the_same_key(
    fresh: Settings,
) -> None:
    key = f"k-{uuid.uuid4().hex}"
    mine = receipt()

    async def work(store: GroupedReceiptStore) -> tuple[Any, ...]:
        assert await store.claim("acme", key, mine) is None
        await asyncio.gather(
            store.mark_appended("acme", key, 2, 41),
            *(store.mark_appended("acme", f"absent-{i}", 0, i) for i in range(5)),
        )
        later, elsewhere = await asyncio.gather(
            store.claim("acme", key, receipt()), store.claim("globex", key, receipt())
        )
        return later, elsewhere

    (later, elsewhere), _ = asyncio.run(with_store(fresh, work))
    assert later is not None
    assert (later.state, later.log_partition, later.log_offset, later.job_id) == ("appended", 2, 41, mine.job_id)
    assert elsewhere is None


def test_marks_made_together_all_land(fresh: Settings) -> None:
    keys = [f"k-{uuid.uuid4().hex}" for _ in range(40)]

    async def work(store: GroupedReceiptStore) -> list[Receipt | None]:
        await asyncio.gather(*(store.claim("acme", key, receipt()) for key in keys))
        await asyncio.gather(*(store.mark_appended("acme", key, 1, offset) for offset, key in enumerate(keys)))
        return [await store.get("acme", key) for key in keys]

    found, _ = asyncio.run(with_store(fresh, work))
    assert [(r.state, r.log_offset) for r in found if r is not None] == [("appended", i) for i in range(40)]
