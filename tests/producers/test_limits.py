import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from identity.tenants import TenantLimits, new_secret
from kernel.settings import Settings
from producers.app import create_app
from producers.errors import ApiError
from producers.limits import InFlightQuota, Rate, RateLimiter
from schemas.access import Principal, Role
from schemas.webhooks import JobStatusView
from tests.fakes import FakeJobReader, FakePublisher, FakeTenants, FakeTokens, receiver_services
from tests.producers.test_signed_webhooks import post, signed
from tests.producers.test_trading_sweep_webhook import sweep

SECRET = new_secret()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    rate = Rate(per_second=2, burst=3)
    for _ in range(3):
        limiter.take("k", rate, "k")
    with pytest.raises(ApiError) as refused:
        limiter.take("k", rate, "k")
    assert (refused.value.status_code, refused.value.error) == (429, "rate_limited")
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"] == "1"
    clock.now += 0.5  # one token back at two a second
    assert limiter.take("k", rate, "k")["RateLimit-Remaining"] == "0"
    with pytest.raises(ApiError):
        limiter.take("k", rate, "k")


def test_buckets_are_kept_per_key() -> None:
    limiter = RateLimiter(Clock())
    rate = Rate(per_second=1, burst=1)
    limiter.take("tenant:a", rate, "a")
    limiter.take("tenant:b", rate, "b")
    with pytest.raises(ApiError):
        limiter.take("tenant:a", rate, "a")


def test_a_refill_never_exceeds_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    rate = Rate(per_second=10, burst=2)
    limiter.take("k", rate, "k")
    clock.now += 3600
    assert limiter.take("k", rate, "k")["RateLimit-Remaining"] == "1"


def _job(tenant: str, status: str, job_id: uuid.UUID | None = None) -> JobStatusView:
    now = datetime.now(UTC)
    return JobStatusView(
        job_id=job_id or uuid.uuid4(),
        tenant_id=tenant,
        job_type="noop",
        status=status,
        attempts=1,
        progress=0.0,
        progress_message=None,
        parameters={},
        result=None,
        error_type=None,
        error_message=None,
        correlation_id="c",
        created_at=now,
        started_at=None,
        completed_at=None,
        updated_at=now,
    )


def _reader(tenant: str, *statuses: str) -> FakeJobReader:
    reader = FakeJobReader()
    for status in statuses:
        job = _job(tenant, status)
        reader.jobs[(job.job_id, tenant)] = job
    return reader


async def test_the_quota_counts_only_unfinished_jobs_and_those_accepted_since() -> None:
    reader = _reader("acme", "QUEUED", "RETRYING", "COMPLETED", "FAILED")
    quota = InFlightQuota(reader.in_flight, refresh_seconds=60)
    await quota.admit("acme", 3)  # two unfinished, the finished ones do not count
    with pytest.raises(ApiError) as refused:
        await quota.admit("acme", 3)  # the one just admitted counts until the read model shows it
    assert (refused.value.status_code, refused.value.error) == (429, "quota_exceeded")
    await quota.admit("other", 1)


async def test_the_quota_admits_from_its_last_count_while_the_read_model_is_down() -> None:
    reader = _reader("acme", "QUEUED")
    down = False

    async def count(tenant_id: str) -> int:
        if down:
            raise OSError("connection refused")
        return await reader.in_flight(tenant_id)

    quota = InFlightQuota(count, refresh_seconds=0)
    await quota.admit("acme", 3)
    down = True
    await quota.admit("acme", 3)  # one counted, one admitted since
    with pytest.raises(ApiError):
        await quota.admit("acme", 3)  # the last count still holds it to its quota
    await quota.admit("new", 3)  # never counted: admitted, the rate still bounds it


async def test_a_count_that_hangs_is_given_up_and_the_webhook_admitted() -> None:
    async def hangs(tenant_id: str) -> int:
        await asyncio.sleep(60)
        return 0

    quota = InFlightQuota(hangs, count_timeout=0.05)
    await asyncio.wait_for(quota.admit("acme", 1), timeout=5)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


def _client(
    settings: Settings,
    publisher: FakePublisher,
    reader: FakeJobReader,
    tenants: FakeTenants,
    tokens: FakeTokens | None = None,
) -> httpx.AsyncClient:
    app = create_app(settings, receiver_services(settings, publisher, reader, tenants=tenants, tokens=tokens))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def slow_tenants(publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    """acme may send 2 at once, a tenth a second after; globex has its own limit of 5."""
    settings = Settings(allow_unregistered_tenants=False, tenant_rate_per_second=0.1, tenant_rate_burst=2)
    tenants = FakeTenants({"acme": (SECRET,), "globex": (SECRET,)}, limits={"globex": TenantLimits(rate_burst=5)})
    async with _client(settings, publisher, FakeJobReader(), tenants) as client:
        yield client


async def test_a_tenant_over_its_rate_gets_429_with_when_to_retry(
    slow_tenants: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    answers = [await post(slow_tenants, *signed({"job_type": "noop"}, SECRET, f"msg_{n}")) for n in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[0].headers["RateLimit-Limit"] == "2"
    assert answers[1].headers["RateLimit-Remaining"] == "0"
    refused = answers[2]
    assert refused.json()["error"] == "rate_limited"
    assert "tenant 'acme'" in refused.json()["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(publisher.events) == 2


async def test_one_tenants_limit_does_not_hold_back_another(slow_tenants: httpx.AsyncClient) -> None:
    for n in range(3):
        await post(slow_tenants, *signed({"job_type": "noop"}, SECRET, f"msg_{n}"))
    answers = [
        await post(slow_tenants, *signed({"job_type": "noop"}, SECRET, f"g_{n}", tenant="globex")) for n in range(5)
    ]
    assert {answer.status_code for answer in answers} == {202}  # globex's own burst of 5 applies


async def test_unsigned_floods_do_not_spend_a_tenants_rate(slow_tenants: httpx.AsyncClient) -> None:
    for n in range(10):
        forged = await post(slow_tenants, *signed({"job_type": "noop"}, new_secret(), f"forged_{n}"))
        assert forged.status_code == 401
    assert (await post(slow_tenants, *signed({"job_type": "noop"}, SECRET, "real"))).status_code == 202


async def test_a_tenant_at_its_quota_gets_429_and_a_redelivery_is_still_answered(publisher: FakePublisher) -> None:
    settings = Settings(allow_unregistered_tenants=False, tenant_max_in_flight=3)
    reader = _reader("acme", "RUNNING", "QUEUED")
    async with _client(settings, publisher, reader, FakeTenants({"acme": (SECRET,)})) as client:
        first = await post(client, *signed({"job_type": "noop"}, SECRET, "msg_1"))
        assert first.status_code == 202
        job_id = uuid.UUID(first.json()["job_id"])
        reader.jobs[(job_id, "acme")] = _job("acme", "QUEUED", job_id)
        over = await post(client, *signed({"job_type": "noop"}, SECRET, "msg_2"))
        assert (over.status_code, over.json()["error"]) == (429, "quota_exceeded")
        assert "3" in over.json()["message"]
        again = await post(client, *signed({"job_type": "noop"}, SECRET, "msg_1"))
        assert (again.status_code, again.json()["job_id"]) == (202, first.json()["job_id"])
        assert len(publisher.events) == 1


async def test_a_tenants_own_sweep_limit_replaces_the_deployments(publisher: FakePublisher) -> None:
    settings = Settings(allow_unregistered_tenants=False)
    assert settings.sweep_max_backtests > 126
    tenants = FakeTenants({"acme": (SECRET,)}, limits={"acme": TenantLimits(max_sweep_backtests=100)})
    async with _client(settings, publisher, FakeJobReader(), tenants) as client:
        content, headers = signed(sweep(), SECRET)  # 126 backtests
        response = await client.post("/webhook/trading-sweep", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "grid_too_large"
    assert "the limit is 100" in response.json()["message"]


async def test_an_api_token_over_its_read_rate_gets_429(publisher: FakePublisher) -> None:
    settings = Settings(allow_unregistered_tenants=False, token_rate_per_second=0.1, token_rate_burst=2)
    reader = _reader("acme", "RUNNING")
    job_id = next(iter(reader.jobs))[0]
    reader_token = Principal("token", "tok_1", Role.VIEWER, "acme")
    tokens = FakeTokens({"zx_one": reader_token, "zx_two": Principal("token", "tok_2", Role.VIEWER, "acme")})
    async with _client(settings, publisher, reader, FakeTenants({"acme": (SECRET,)}), tokens) as client:
        answers = [
            await client.get(f"/webhook/jobs/{job_id}", headers={"Authorization": "Bearer zx_one"}) for _ in range(3)
        ]
        other = await client.get(f"/webhook/jobs/{job_id}", headers={"Authorization": "Bearer zx_two"})
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "rate_limited"
    assert other.status_code == 200  # each token has its own bucket


async def test_requests_that_find_the_count_stale_together_run_one_count_and_the_others_go_on_with_the_last() -> None:
    counts = 0
    release = asyncio.Event()

    async def count(tenant_id: str) -> int:
        nonlocal counts
        counts += 1
        await release.wait()
        return 5

    quota = InFlightQuota(count, refresh_seconds=0)
    first = asyncio.gather(*(quota.admit("acme", 100) for _ in range(20)))
    await asyncio.sleep(0.01)
    assert counts == 1, "those without any count yet wait for the one count"
    release.set()
    await first
    release.clear()
    later = asyncio.gather(*(quota.admit("acme", 100) for _ in range(20)))
    await asyncio.sleep(0.01)
    assert counts == 2
    assert not later.done(), "the request that counts waits for its count"
    release.set()
    await later
