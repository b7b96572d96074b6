import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from identity.callback_tokens import callback_token
from kernel.settings import Settings
from producers.app import create_app
from schemas.events import SweepCallbackReceived
from schemas.webhooks import JobStatusView
from tests.fakes import FakeJobReader, FakePublisher, receiver_services

SECRET = "test-secret"
TENANT = "acme"
HEADERS = {"X-Tenant-ID": TENANT}


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def jobs() -> FakeJobReader:
    return FakeJobReader()


@pytest.fixture
async def client(publisher: FakePublisher, jobs: FakeJobReader) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(callback_secret=SECRET, callback_wait_seconds=0.2, sweep_chunk_size=2)  # type: ignore[arg-type]
    services = receiver_services(settings, publisher, jobs)
    app = create_app(settings, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def dispatched_job(jobs: FakeJobReader, status: str = "RUNNING", reference: str | None = "ext-1") -> uuid.UUID:
    job_id = uuid.uuid4()
    now = datetime.now(UTC)
    jobs.jobs[(job_id, TENANT)] = JobStatusView(
        job_id=job_id,
        tenant_id=TENANT,
        job_type="trading.sweep",
        status=status,
        attempts=1,
        progress=0.0,
        progress_message=None,
        result=None,
        error_type=None,
        error_message=None,
        correlation_id="c",
        parameters={"tickers": ["AAPL"], "strategies": [{"type": "momentum", "parameters": {}}]},
        metrics={"external": {"service": "http://svc", "reference": reference}} if reference else {},
        created_at=now,
        started_at=now,
        completed_at=None,
        updated_at=now,
    )
    return job_id


def callback(job_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    row = {
        "ticker": "AAPL",
        "strategy_type": "momentum",
        "parameters": {"window": 5, "threshold": 0},
        "score": 1.2,
        "metrics": {"sharpe": 1.2},
    }
    body = {
        "job_id": str(job_id),
        "external_reference": "ext-1",
        "status": "completed",
        "callback_token": callback_token(SECRET, TENANT, job_id),
        "results": [row, row, row],
    }
    return body | overrides


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """As the external service does: the job in the address given at dispatch, the token as the credential."""
    return await client.post(
        "/webhook/sweep-callback",
        json=body,
        params={"job_id": body["job_id"]},
        headers=HEADERS | {"Authorization": f"Bearer {body['callback_token']}"},
    )


async def test_a_valid_callback_is_recorded_as_events_of_bounded_size(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    job_id = dispatched_job(jobs)
    response = await post(client, callback(job_id))
    assert response.status_code == 202, response.text
    assert response.json() == {"job_id": str(job_id), "status": "RECORDED", "events": 2}
    events = [e for e in publisher.events if isinstance(e, SweepCallbackReceived)]
    assert [(e.payload.part_index, e.payload.part_count, len(e.payload.rows)) for e in events] == [(0, 2, 2), (1, 2, 1)]


async def test_a_redelivered_callback_repeats_the_same_event_ids(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    job_id = dispatched_job(jobs)
    await post(client, callback(job_id))
    await post(client, callback(job_id))
    ids = [e.event_id for e in publisher.events]
    assert ids[:2] == ids[2:]


async def test_an_unknown_job_gets_404(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    response = await post(client, callback(uuid.uuid4()))
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_job"
    assert publisher.events == []


async def test_a_token_of_another_job_gets_401(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    job_id = dispatched_job(jobs)
    response = await post(client, callback(job_id, callback_token=callback_token(SECRET, TENANT, uuid.uuid4())))
    assert response.status_code == 401
    assert response.json()["details"][0]["loc"] == ["header", "Authorization"]


async def test_a_callback_without_its_token_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = dispatched_job(jobs)
    sent = 0

    async def sixty_four_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 1
            yield b" " * 1_048_576

    for headers in ({}, {"Authorization": f"Bearer {callback_token(SECRET, TENANT, uuid.uuid4())}"}):
        response = await client.post(
            "/webhook/sweep-callback",
            params={"job_id": str(job_id)},
            content=sixty_four_megabytes(),
            headers=HEADERS | headers | {"Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()["error"]) == (401, "invalid_callback_token")
    assert sent <= 2, f"{sent} MiB were read before the refusal"


async def test_a_body_naming_another_job_than_the_address_is_refused(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    mine, other = dispatched_job(jobs), dispatched_job(jobs)
    body = callback(other)
    response = await client.post(
        "/webhook/sweep-callback",
        json=body,
        params={"job_id": str(mine)},
        headers=HEADERS | {"Authorization": f"Bearer {callback_token(SECRET, TENANT, mine)}"},
    )
    assert (response.status_code, response.json()["error"]) == (422, "callback_mismatch")


async def test_a_late_callback_for_a_finished_job_changes_nothing(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    job_id = dispatched_job(jobs, status="COMPLETED")
    response = await post(client, callback(job_id))
    assert response.status_code == 409
    assert "already COMPLETED; this callback changes nothing" in response.json()["message"]
    assert publisher.events == []


async def test_a_callback_with_another_reference_is_refused(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    job_id = dispatched_job(jobs)
    response = await post(client, callback(job_id, external_reference="ext-2"))
    assert response.status_code == 409
    assert response.json()["error"] == "reference_mismatch"


async def test_a_job_that_was_never_dispatched_is_refused_after_a_short_wait(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = dispatched_job(jobs, reference=None)
    response = await post(client, callback(job_id))
    assert response.status_code == 409
    assert response.json()["error"] == "not_dispatched"


async def test_results_for_a_ticker_outside_the_sweep_are_refused_by_row(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = dispatched_job(jobs)
    row = {"ticker": "TSLA", "strategy_type": "momentum", "parameters": {}, "score": None, "metrics": {}}
    response = await post(client, callback(job_id, results=[row]))
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["results", 0, "ticker"]


async def test_a_failure_must_say_why(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    job_id = dispatched_job(jobs)
    response = await post(client, callback(job_id, status="failed", results=[]))
    assert response.status_code == 422
    assert "says why" in response.json()["details"][0]["msg"]
