"""In production the receiver takes the tenant from a credential only: the signature for webhooks, an API token
for reads. The header alone names which tenant's secrets to try."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from identity.tenants import new_secret
from kernel.secret_box import generate_master_key
from kernel.settings import Settings
from producers.app import create_app
from schemas.access import Principal, Role
from schemas.webhooks import JobStatusView
from tests.fakes import FakeJobReader, FakePublisher, FakeTenants, FakeTokens, receiver_services
from tests.producers.test_signed_webhooks import signed

SECRET = new_secret()
ACME_TOKEN, GLOBEX_TOKEN = "zxt_acme", "zxt_globex"
PRODUCTION = Settings(
    env="production",
    callback_secret="real",
    master_keys=generate_master_key(),
    session_keys="real",  # type: ignore[arg-type]
    s3_endpoint_url="aws",
    callback_wait_seconds=0.1,
)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def jobs() -> FakeJobReader:
    return FakeJobReader()


@pytest.fixture
async def client(publisher: FakePublisher, jobs: FakeJobReader) -> AsyncIterator[httpx.AsyncClient]:
    tokens = FakeTokens(
        {
            ACME_TOKEN: Principal("token", "t1", Role.VIEWER, "acme"),
            GLOBEX_TOKEN: Principal("token", "t2", Role.VIEWER, "globex"),
        }
    )
    services = receiver_services(PRODUCTION, publisher, jobs, tenants=FakeTenants({"acme": (SECRET,)}), tokens=tokens)
    app = create_app(PRODUCTION, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def a_job(jobs: FakeJobReader, tenant: str = "acme", status: str = "RUNNING") -> uuid.UUID:
    job_id, now = uuid.uuid4(), datetime.now(UTC)
    jobs.jobs[(job_id, tenant)] = JobStatusView(
        job_id=job_id,
        tenant_id=tenant,
        job_type="noop",
        status=status,
        attempts=1,
        progress=0.0,
        progress_message=None,
        parameters={"secret": "acme's"},
        result=None,
        error_type=None,
        error_message=None,
        correlation_id="c",
        created_at=now,
        started_at=now,
        completed_at=None,
        updated_at=now,
    )
    return job_id


async def test_an_unsigned_webhook_is_401_in_production(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    response = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers={"X-Tenant-ID": "acme"})
    assert (response.status_code, response.json()["error"]) == (401, "missing_signature_header")
    assert publisher.events == []


async def test_an_unknown_tenant_is_401_in_production(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    response = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers={"X-Tenant-ID": "nobody"})
    assert (response.status_code, response.json()["error"]) == (401, "unknown_tenant")
    assert publisher.events == []


async def test_a_signed_webhook_of_a_registered_tenant_is_accepted(client: httpx.AsyncClient) -> None:
    content, headers = signed({"job_type": "noop"}, secret=SECRET)
    response = await client.post("/webhook/generic-job", content=content, headers=headers)
    assert response.status_code == 202, response.text


async def test_a_replayed_signed_body_with_fresh_idempotency_keys_creates_no_second_job(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    content, headers = signed({"job_type": "noop"}, secret=SECRET, webhook_id="msg_once")
    first = await client.post("/webhook/generic-job", content=content, headers=headers | {"Idempotency-Key": "a"})
    replayed = await client.post("/webhook/generic-job", content=content, headers=headers | {"Idempotency-Key": "b"})
    assert first.status_code == replayed.status_code == 202
    assert first.json()["job_id"] == replayed.json()["job_id"]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert len(publisher.events) == 1


async def test_a_captured_signed_cancel_cannot_cancel_another_job(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    mine, other = a_job(jobs), a_job(jobs)
    content, headers = signed({"job_id": str(mine), "reason": "stop"}, secret=SECRET)
    replayed = await client.post(f"/webhook/jobs/{other}/cancel", content=content, headers=headers)
    assert (replayed.status_code, replayed.json()["error"]) == (422, "job_id_mismatch")
    assert publisher.events == []
    accepted = await client.post(f"/webhook/jobs/{mine}/cancel", content=content, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert [str(event.job_id) for event in publisher.events] == [str(mine)]


async def test_a_signed_cancel_that_names_no_job_is_refused(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    content, headers = signed({"reason": "stop"}, secret=SECRET)
    response = await client.post(f"/webhook/jobs/{a_job(jobs)}/cancel", content=content, headers=headers)
    assert (response.status_code, response.json()["details"][0]["loc"]) == (422, ["body", "job_id"])


async def test_a_status_read_needs_a_token_and_the_header_alone_is_401(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = a_job(jobs)
    by_header = await client.get(f"/webhook/jobs/{job_id}", headers={"X-Tenant-ID": "acme"})
    assert (by_header.status_code, by_header.json()["error"]) == (401, "missing_credentials")
    assert by_header.headers["WWW-Authenticate"].startswith("Bearer")
    by_token = await client.get(f"/webhook/jobs/{job_id}", headers={"Authorization": f"Bearer {ACME_TOKEN}"})
    assert by_token.status_code == 200
    assert by_token.json()["parameters"] == {"secret": "acme's"}


async def test_another_tenants_job_is_404_never_403_even_with_its_tenant_in_the_header(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = a_job(jobs, tenant="acme")
    response = await client.get(
        f"/webhook/jobs/{job_id}", headers={"Authorization": f"Bearer {GLOBEX_TOKEN}", "X-Tenant-ID": "acme"}
    )
    assert response.status_code == 404
    assert "acme's" not in response.text


@pytest.mark.parametrize("authorization", ["Bearer zxt_forged", "Bearer ", "Basic YWNtZTpwdw==", "Bearer not-a-token"])
async def test_a_bad_credential_is_401(client: httpx.AsyncClient, jobs: FakeJobReader, authorization: str) -> None:
    response = await client.get(f"/webhook/jobs/{a_job(jobs)}", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert "acme's" not in response.text


async def test_in_development_a_registered_tenants_jobs_still_need_its_token() -> None:
    settings = Settings(env="development")
    jobs = FakeJobReader()
    services = receiver_services(settings, FakePublisher(), jobs, tenants=FakeTenants({"acme": (SECRET,)}))
    app = create_app(settings, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        registered = await client.get(f"/webhook/jobs/{a_job(jobs)}", headers={"X-Tenant-ID": "acme"})
        unregistered = await client.get(f"/webhook/jobs/{a_job(jobs, 'demo')}", headers={"X-Tenant-ID": "demo"})
    assert (registered.status_code, registered.json()["error"]) == (401, "token_required")
    assert unregistered.status_code == 200
