"""Receipts written in groups: under load, the claims of many requests are one ``INSERT … ON CONFLICT … RETURNING``
and their marks one pipelined ``UPDATE``, instead of a transaction of their own each (``kernel.group_commit``).

Nothing about a receipt changes: a claim is durable before its request appends, a mark before its request is
answered, and each request learns its own outcome (won, or the receipt it found). Groups are split by tenant,
because a transaction sees one tenant's rows.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import TenantScope, scoped
from kernel.group_commit import GroupCommit, Outcomes
from producers.receipts import Receipt, SqlReceiptStore
from schemas.operational_tables import webhook_receipts

# A group small enough that one slow write does not hold hundreds of requests.
MAX_GROUP = 256
# One statement text whatever the group's size, its columns as arrays: a multi-row VALUES was compiled by SQLAlchemy
# and parsed by psycopg again for every size (both showed in the receiver's profile).
_CLAIM = text("""
INSERT INTO webhook_receipts (tenant_id, idempotency_key, request_sha256, job_id, event_id, correlation_id, state)
SELECT :tenant, k, s, j, e, c, 'pending'
FROM unnest(CAST(:keys AS text[]), CAST(:shas AS text[]), CAST(:jobs AS uuid[]), CAST(:events AS uuid[]),
            CAST(:correlations AS text[])) AS t(k, s, j, e, c)
ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
RETURNING idempotency_key
""")
_MARK = text("""
UPDATE webhook_receipts AS r SET state = 'appended', log_partition = t.p, log_offset = t.o, updated_at = now()
FROM unnest(CAST(:keys AS text[]), CAST(:partitions AS integer[]), CAST(:offsets AS bigint[])) AS t(k, p, o)
WHERE r.tenant_id = :tenant AND r.idempotency_key = t.k
""")


@dataclass(frozen=True)
class _Claim:
    tenant_id: str
    key: str
    receipt: Receipt


@dataclass(frozen=True)
class _Mark:
    tenant_id: str
    key: str
    partition: int
    offset: int


class GroupedReceiptStore:
    def __init__(self, engine: AsyncEngine, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._one_by_one = SqlReceiptStore(engine)
        self._claims: GroupCommit[_Claim, Receipt | None] = GroupCommit(self._claim_group, max_group)
        self._marks: GroupCommit[_Mark, None] = GroupCommit(self._mark_group, max_group)

    async def claim(self, tenant_id: str, key: str, receipt: Receipt) -> Receipt | None:
        return await self._claims.submit(_Claim(tenant_id, key, receipt))

    async def get(self, tenant_id: str, key: str) -> Receipt | None:
        return await self._one_by_one.get(tenant_id, key)

    async def mark_appended(self, tenant_id: str, key: str, partition: int, offset: int) -> None:
        await self._marks.submit(_Mark(tenant_id, key, partition, offset))

    async def release(self, tenant_id: str, key: str) -> None:
        await self._one_by_one.release(tenant_id, key)  # rare (a failed append): not worth a group

    async def _claim_group(self, claims: list[_Claim]) -> Outcomes[Receipt | None]:
        outcomes: list[Receipt | BaseException | None] = [None] * len(claims)
        for tenant_id, indexes in _by_tenant(claims).items():
            found: list[Receipt | BaseException | None]
            try:
                found = list(await self._claim_for_tenant(tenant_id, [claims[i] for i in indexes]))
            except Exception as exc:  # this tenant's callers see the failure; the other tenants' go on
                found = [exc] * len(indexes)
            for index, outcome in zip(indexes, found, strict=True):
                outcomes[index] = outcome
        return outcomes

    async def _claim_for_tenant(self, tenant_id: str, claims: list[_Claim]) -> list[Receipt | None]:
        # The first claim of a key in the group is the one inserted; a second delivery of the same key in the same
        # group finds the first one's receipt, as if it had come a moment later.
        first: dict[str, _Claim] = {}
        for claim in claims:
            first.setdefault(claim.key, claim)
        claimed = list(first.values())
        parameters = {
            "tenant": tenant_id,
            "keys": [c.key for c in claimed],
            "shas": [c.receipt.request_sha256 for c in claimed],
            "jobs": [c.receipt.job_id for c in claimed],
            "events": [c.receipt.event_id for c in claimed],
            "correlations": [c.receipt.correlation_id for c in claimed],
        }
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            won = {key for (key,) in await connection.execute(_CLAIM, parameters)}
            taken = [c.key for c in claims if c.key not in won or first[c.key] is not c]
            existing: dict[str, Receipt] = {}
            if taken:
                columns = [webhook_receipts.c[name] for name in Receipt.__dataclass_fields__]
                query = select(webhook_receipts.c.idempotency_key, *columns).where(
                    webhook_receipts.c.tenant_id == tenant_id, webhook_receipts.c.idempotency_key.in_(set(taken))
                )
                for row in (await connection.execute(query)).mappings():
                    existing[row["idempotency_key"]] = Receipt(
                        **{name: row[name] for name in Receipt.__dataclass_fields__}
                    )
        # A key that lost and whose receipt is gone was released by a failed append meanwhile: as with one claim at
        # a time, its caller goes on as the winner.
        return [None if c.key in won and first[c.key] is c else existing.get(c.key) for c in claims]

    async def _mark_group(self, marks: list[_Mark]) -> Outcomes[None]:
        outcomes: list[BaseException | None] = [None] * len(marks)
        for tenant_id, indexes in _by_tenant(marks).items():
            parameters = {
                "tenant": tenant_id,
                "keys": [marks[i].key for i in indexes],
                "partitions": [marks[i].partition for i in indexes],
                "offsets": [marks[i].offset for i in indexes],
            }
            try:
                async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
                    await connection.execute(_MARK, parameters)
            except Exception as exc:
                for index in indexes:
                    outcomes[index] = exc
        return outcomes


def _by_tenant(items: Sequence[_Claim | _Mark]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[item.tenant_id].append(index)
    return groups
