"""Per-tenant and per-credential limits of the receiver: a rate (token buckets) and jobs in flight (a quota).

Buckets live in each receiver process, so N processes let through up to N times the rate; the quota counts a
tenant's unfinished jobs in the read model (refreshed every second) plus what this process accepted since. A
refusal is a 429 that says which limit, with ``Retry-After`` and the ``RateLimit-*`` headers.

Ingest does not need Postgres (DESIGN.md, "The guarantees"): when the read model cannot be counted the quota goes on
from the last count it had (plus what it admitted since), or admits, and tries again a second later. The rate
buckets, which live in memory, still bound what a tenant can send meanwhile.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import cachetools

from identity.tenants import TenantLimits
from kernel.logging import get_logger
from kernel.settings import Settings
from producers.errors import ApiError

log = get_logger(__name__)

KEPT_BUCKETS = 10_000  # keyed by tenants and tokens: bounded, the least recently used going first


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


def tenant_rate(limits: TenantLimits, settings: Settings) -> Rate:
    """What a tenant may send: its own limits where set, else the deployment's."""
    return Rate(
        limits.rate_per_second or settings.tenant_rate_per_second, limits.rate_burst or settings.tenant_rate_burst
    )


def token_rate(settings: Settings) -> Rate:
    return Rate(settings.token_rate_per_second, settings.token_rate_burst)


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: cachetools.LRUCache[str, _Bucket] = cachetools.LRUCache(KEPT_BUCKETS)
        self._clock = clock

    def take(self, key: str, rate: Rate, what: str) -> dict[str, str]:
        """Takes one token from ``key``'s bucket; the RateLimit headers of the answer. ApiError(429) when empty."""
        now = self._clock()
        bucket = self._buckets.get(key) or _Bucket(float(rate.burst), now)
        bucket.tokens = min(float(rate.burst), bucket.tokens + (now - bucket.at) * rate.per_second)
        bucket.at = now
        self._buckets[key] = bucket
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / rate.per_second)
            raise ApiError(
                429,
                "rate_limited",
                f"{what} may make {rate.per_second:g} requests a second (bursts of {rate.burst}); retry in {wait} s",
                headers={"Retry-After": str(wait)} | _headers(rate, 0, wait),
            )
        bucket.tokens -= 1
        return _headers(rate, int(bucket.tokens), math.ceil((rate.burst - bucket.tokens) / rate.per_second))


def _headers(rate: Rate, remaining: int, reset: int) -> dict[str, str]:
    return {"RateLimit-Limit": str(rate.burst), "RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(reset)}


class InFlightQuota:
    """At most ``limit`` of a tenant's jobs queued, running or retrying when a new one is accepted."""

    def __init__(
        self, count: Callable[[str], Awaitable[int]], refresh_seconds: float = 1.0, count_timeout: float = 1.0
    ) -> None:
        self._count = count
        self._refresh = refresh_seconds
        self._count_timeout = count_timeout
        self._known: cachetools.LRUCache[str, tuple[float, int]] = cachetools.LRUCache(KEPT_BUCKETS)
        # One count at a time per tenant: under load every request that found the count stale ran its own, up to
        # one per connection, and the receiver spent its time opening Postgres connections (seen with py-spy).
        self._counting: dict[str, asyncio.Future[None]] = {}

    async def admit(self, tenant_id: str, limit: int) -> None:
        known = self._known.get(tenant_id)
        if known is None or time.monotonic() - known[0] > self._refresh:
            counting = self._counting.get(tenant_id)
            if counting is None:
                counting = self._counting[tenant_id] = asyncio.ensure_future(self._recount(tenant_id))
                await asyncio.shield(counting)
            elif known is None:
                await asyncio.shield(counting)  # nothing to go on until the first count
            # else: another request is counting; this one goes on with the last count
        at, count = self._known.get(tenant_id) or (time.monotonic(), 0)
        if count >= limit:
            raise ApiError(
                429,
                "quota_exceeded",
                f"tenant {tenant_id!r} has {count:,} jobs queued or running; "
                f"it may have {limit:,}; new ones are accepted as they finish",
                headers={"Retry-After": "5"},
            )
        self._known[tenant_id] = (at, count + 1)

    async def _recount(self, tenant_id: str) -> None:
        try:
            known = self._known.get(tenant_id)
            count = await self._counted(tenant_id, known[1] if known else 0)
            self._known[tenant_id] = (time.monotonic(), count)
        finally:
            self._counting.pop(tenant_id, None)

    async def _counted(self, tenant_id: str, otherwise: int) -> int:
        try:
            async with asyncio.timeout(self._count_timeout):
                return await self._count(tenant_id)
        except Exception as exc:  # the read model's driver raises many kinds; none of them may refuse a webhook
            log.warning(
                "jobs in flight not counted: the quota goes on from its last count",
                tenant_id=tenant_id,
                last_count=otherwise,
                error=repr(exc)[:300],
            )
            return otherwise
