import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from kernel.publisher import Appended
from kernel.secret_box import generate_master_key
from kernel.settings import Settings
from producers.app import create_app
from producers.backpressure import BoundedPublisher
from schemas.events import Event, JobRequested
from schemas.jobs import JOB_PARAMETERS, JOB_TYPE_NAMES
from schemas.webhooks import JobStatusView
from tests.fakes import FakeJobReader, FakePublisher, receiver_services

HEADERS = {"Content-Type": "application/json", "X-Tenant-ID": "acme"}


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def jobs() -> FakeJobReader:
    return FakeJobReader()


@pytest.fixture
async def client(publisher: FakePublisher, jobs: FakeJobReader) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(max_body_bytes=2048, http_allowed_hosts=["api.example.com"], callback_wait_seconds=0.2)
    app = create_app(settings, receiver_services(settings, publisher, jobs))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_an_accepted_job_is_in_the_log_before_the_202(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=HEADERS)
    assert response.status_code == 202
    body = response.json()
    [event] = publisher.events
    assert isinstance(event, JobRequested)
    assert body["job_id"] == str(event.job_id)
    assert body["status_url"].endswith(f"/webhook/jobs/{event.job_id}")
    assert event.tenant_id == "acme"
    assert event.payload.job_type == "noop"


async def test_a_payload_with_a_wrong_field_type_gets_422_naming_the_field(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await client.post("/webhook/generic-job", json={"job_type": "noop", "parameters": []}, headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_payload"
    assert response.json()["details"][0]["loc"] == ["parameters"]
    assert publisher.events == []


async def test_an_unknown_job_type_gets_422_listing_the_known_types(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/generic-job", json={"job_type": "teleport"}, headers=HEADERS)
    assert response.status_code == 422
    body = response.json()
    assert body["details"][0]["loc"] == ["job_type"]
    assert "'sleep'" in body["details"][0]["msg"]


def test_the_contract_names_exactly_the_registered_job_types() -> None:
    assert set(JOB_TYPE_NAMES) == set(JOB_PARAMETERS)


async def test_parameters_that_do_not_fit_the_job_type_get_422_with_their_path(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/generic-job", json={"job_type": "sleep", "parameters": {"seconds": -1}}, headers=HEADERS
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["parameters", "seconds"]


async def test_an_http_request_to_a_host_off_the_allow_list_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/generic-job",
        json={"job_type": "http.request", "parameters": {"url": "http://169.254.169.254/latest"}},
        headers=HEADERS,
    )
    assert response.status_code == 422
    assert response.json()["error"] == "outbound_refused"
    assert response.json()["details"][0]["loc"] == ["parameters", "url"]
    assert "allow-list" in response.json()["message"]


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"url": "http://api.example.com:22/"}, "port 22 is not allowed"),
        ({"url": "http://user:pw@api.example.com/"}, "credentials in the URL"),
        (
            {"url": "http://api.example.com/", "headers": {"Host": "internal", "Transfer-Encoding": "chunked"}},
            "Host, Transfer-Encoding",
        ),
    ],
)
async def test_an_http_request_cannot_choose_its_port_credentials_in_the_url_or_connection_headers(
    client: httpx.AsyncClient, parameters: dict[str, Any], reason: str
) -> None:
    response = await client.post(
        "/webhook/generic-job", json={"job_type": "http.request", "parameters": parameters}, headers=HEADERS
    )
    assert response.status_code == 422
    assert reason in response.json()["message"]


@pytest.mark.parametrize(
    ("parameters", "error", "where"),
    [
        (
            {"headers": {"Authorization": "Bearer abc"}},
            "literal_credential",
            ["parameters", "headers", "Authorization"],
        ),
        ({"headers": {"X-Api-Key": "k-1"}}, "literal_credential", ["parameters", "headers", "X-Api-Key"]),
        ({"url": "https://api.example.com/?api_key=k-1"}, "credential_in_url", ["parameters", "url"]),
    ],
)
async def test_a_credential_written_into_a_job_is_refused_before_it_reaches_the_log(
    client: httpx.AsyncClient, publisher: FakePublisher, parameters: dict[str, Any], error: str, where: list[str]
) -> None:
    body = {"job_type": "http.request", "parameters": {"url": "https://api.example.com/"} | parameters}
    response = await client.post("/webhook/generic-job", json=body, headers=HEADERS)
    assert (response.status_code, response.json()["error"]) == (422, error)
    assert response.json()["details"][0]["loc"] == where
    assert "secret" in response.json()["message"]
    assert publisher.events == []


async def test_a_credential_named_as_a_tenant_secret_is_accepted_and_only_its_name_is_logged(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    headers = {"Authorization": {"secret": "crm-token"}}
    body = {"job_type": "http.request", "parameters": {"url": "https://api.example.com/", "headers": headers}}
    response = await client.post("/webhook/generic-job", json=body, headers=HEADERS)
    assert response.status_code == 202, response.text
    assert publisher.events[0].payload.parameters["headers"] == headers  # type: ignore[attr-defined]


async def test_a_body_over_the_limit_gets_413(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    big = {"job_type": "noop", "parameters": {"echo": {"x": "y" * 4000}}}
    response = await client.post("/webhook/generic-job", content=json.dumps(big), headers=HEADERS)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert publisher.events == []


async def test_a_non_json_content_type_gets_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/generic-job", content="job_type=noop", headers={**HEADERS, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "text/plain" in response.json()["message"]


async def test_malformed_json_gets_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/generic-job", content="{not json", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["details"][0]["type"] == "json_invalid"


async def test_a_request_without_a_tenant_gets_422_naming_the_header(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/generic-job", json={"job_type": "noop"}, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["header", "X-Tenant-ID"]


async def test_when_the_log_is_unavailable_the_answer_is_503_and_nothing_is_accepted(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.unavailable = True
    response = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=HEADERS)
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
    assert response.headers["Retry-After"] == "5"


async def test_a_redelivery_with_the_same_idempotency_key_gets_the_same_answer_and_appends_nothing(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    headers = {**HEADERS, "Idempotency-Key": "order-42"}
    first = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=headers)
    # The same request, written differently: same fields, other order and spacing.
    second = await client.post(
        "/webhook/generic-job",
        content=b'{ "parameters": {},  "job_type": "noop" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(publisher.events) == 1


async def test_reusing_an_idempotency_key_for_another_request_is_a_conflict(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    headers = {**HEADERS, "Idempotency-Key": "order-43"}
    await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=headers)
    other = await client.post("/webhook/generic-job", json={"job_type": "sleep"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_conflict"
    assert len(publisher.events) == 1


async def test_a_keyed_request_the_log_refused_can_be_retried_with_the_same_key(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    headers = {**HEADERS, "Idempotency-Key": "order-44"}
    publisher.unavailable = True
    refused = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=headers)
    assert refused.status_code == 503
    publisher.unavailable = False
    retried = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=headers)
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers
    assert len(publisher.events) == 1


async def test_an_unknown_job_gets_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/webhook/jobs/{uuid.uuid4()}", headers=HEADERS)
    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


async def test_a_job_is_visible_only_to_its_own_tenant(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    job_id = uuid.uuid4()
    now = datetime.now(UTC)
    jobs.jobs[(job_id, "acme")] = JobStatusView(
        job_id=job_id,
        tenant_id="acme",
        job_type="noop",
        status="COMPLETED",
        attempts=1,
        progress=1.0,
        progress_message=None,
        parameters={},
        result={"echo": None},
        error_type=None,
        error_message=None,
        correlation_id="c",
        created_at=now,
        started_at=now,
        completed_at=now,
        updated_at=now,
    )
    mine = await client.get(f"/webhook/jobs/{job_id}", headers=HEADERS)
    theirs = await client.get(f"/webhook/jobs/{job_id}", headers={"X-Tenant-ID": "other"})
    assert mine.status_code == 200
    assert mine.json()["status"] == "COMPLETED"
    assert theirs.status_code == 404


def a_known_job(jobs: FakeJobReader) -> uuid.UUID:
    job_id = uuid.uuid4()
    now = datetime.now(UTC)
    jobs.jobs[(job_id, "acme")] = JobStatusView(
        job_id=job_id,
        tenant_id="acme",
        job_type="noop",
        status="RUNNING",
        attempts=1,
        progress=0.0,
        progress_message=None,
        parameters={},
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


async def test_a_status_read_waits_until_the_read_model_has_applied_the_given_offset(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = a_known_job(jobs)

    async def projector_catches_up() -> None:
        await asyncio.sleep(0.2)
        jobs.projected[3] = 42

    catching_up = asyncio.create_task(projector_catches_up())
    response = await client.get(f"/webhook/jobs/{job_id}?partition=3&offset=41", headers=HEADERS)
    await catching_up
    assert response.status_code == 200
    assert response.headers["Zixly-Projected-To"] == "3:42"


async def test_a_status_read_whose_offset_is_not_reached_in_time_gets_412_with_retry_after(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    job_id = a_known_job(jobs)
    jobs.projected[3] = 41
    response = await client.get(f"/webhook/jobs/{job_id}?partition=3&offset=41&wait=0.1", headers=HEADERS)
    assert response.status_code == 412
    assert response.json()["error"] == "projection_behind"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("query", ["offset=4", "partition=1", "partition=1&offset=-1", "partition=1&offset=1&wait=31"])
async def test_a_status_read_with_half_or_bad_consistency_parameters_gets_422(
    client: httpx.AsyncClient, jobs: FakeJobReader, query: str
) -> None:
    response = await client.get(f"/webhook/jobs/{a_known_job(jobs)}?{query}", headers=HEADERS)
    assert response.status_code == 422


async def test_a_malformed_job_id_gets_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhook/jobs/not-a-uuid", headers=HEADERS)
    assert response.status_code == 422


async def test_metrics_count_requests_by_route_and_status(client: httpx.AsyncClient) -> None:
    await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=HEADERS)
    metrics = (await client.get("/metrics")).text
    assert 'zixly_http_requests_total{method="POST",route="/webhook/generic-job",status="202"}' in metrics
    assert "zixly_http_request_duration_seconds_bucket" in metrics


async def test_the_openapi_document_describes_the_webhook_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/webhook/generic-job"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "job_type" in body["properties"]
    assert (await client.get("/docs")).status_code == 200


class StalledPublisher(FakePublisher):
    """A broker that takes its time: appends wait until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def publish(self, event: Event) -> Appended:
        await self.release.wait()
        return await super().publish(event)


async def test_a_receiver_with_too_many_appends_waiting_sheds_load_with_503_at_once() -> None:
    stalled = StalledPublisher()
    bounded = BoundedPublisher(stalled, max_in_flight=2)
    settings = Settings()
    app = create_app(settings, receiver_services(settings, bounded, FakeJobReader()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        waiting = [
            asyncio.create_task(client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=HEADERS))
            for _ in range(2)
        ]
        while bounded.in_flight < 2:
            await asyncio.sleep(0.01)
        shed = await client.post("/webhook/generic-job", json={"job_type": "noop"}, headers=HEADERS)
        assert shed.status_code == 503
        assert shed.json()["error"] == "overloaded"
        assert shed.headers["Retry-After"] == "1"
        stalled.release.set()
        assert [(await task).status_code for task in waiting] == [202, 202]
    assert len(stalled.events) == 2


async def test_a_running_job_can_be_cancelled_once_and_a_finished_one_says_so(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    job_id = uuid.uuid4()
    now = datetime.now(UTC)
    running = JobStatusView(
        job_id=job_id,
        tenant_id="acme",
        job_type="sleep",
        status="RUNNING",
        attempts=1,
        progress=0.5,
        progress_message=None,
        parameters={},
        result=None,
        error_type=None,
        error_message=None,
        correlation_id="c",
        created_at=now,
        started_at=now,
        completed_at=None,
        updated_at=now,
    )
    jobs.jobs[(job_id, "acme")] = running
    first = await client.post(f"/webhook/jobs/{job_id}/cancel", json={"reason": "wrong inputs"}, headers=HEADERS)
    again = await client.post(f"/webhook/jobs/{job_id}/cancel", headers=HEADERS)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["event_id"] == again.json()["event_id"]  # the same fact, however often it is asked
    assert publisher.types() == ["JobCancelRequested", "JobCancelRequested"]

    jobs.jobs[(job_id, "acme")] = running.model_copy(update={"status": "COMPLETED"})
    late = await client.post(f"/webhook/jobs/{job_id}/cancel", headers=HEADERS)
    assert late.status_code == 409
    assert "already COMPLETED; cancelling changes nothing" in late.json()["message"]


async def test_cancelling_an_unknown_job_gets_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/webhook/jobs/{uuid.uuid4()}/cancel", headers=HEADERS)
    assert response.status_code == 404


async def test_a_cancel_without_a_body_or_its_content_type_is_accepted(
    client: httpx.AsyncClient, jobs: FakeJobReader
) -> None:
    response = await client.post(f"/webhook/jobs/{a_known_job(jobs)}/cancel", headers={"X-Tenant-ID": "acme"})
    assert response.status_code == 202


async def test_a_cancel_body_over_the_limit_gets_413_and_appends_nothing(
    client: httpx.AsyncClient, jobs: FakeJobReader, publisher: FakePublisher
) -> None:
    reason = "x" * 5000  # the fixture's limit is 2,048 bytes
    response = await client.post(f"/webhook/jobs/{a_known_job(jobs)}/cancel", json={"reason": reason}, headers=HEADERS)
    assert response.status_code == 413
    assert publisher.events == []


async def test_a_cancel_body_that_is_not_json_gets_415(client: httpx.AsyncClient, jobs: FakeJobReader) -> None:
    response = await client.post(
        f"/webhook/jobs/{a_known_job(jobs)}/cancel",
        content=b"stop it",
        headers={"X-Tenant-ID": "acme", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"crash": True}, ["crash"]),
        ({"fail_attempts": 2}, ["fail_attempts"]),
        ({"fail": True}, ["fail"]),
        ({"seconds": 3600}, ["seconds"]),
        ({"seconds": 61, "crash": True}, ["crash", "seconds"]),
    ],
)
async def test_test_only_options_are_refused_outside_development(
    parameters: dict[str, Any], named: list[str], publisher: FakePublisher
) -> None:
    settings = Settings(
        env="production",
        callback_secret="x",
        master_keys=generate_master_key(),  # type: ignore[arg-type]
        session_keys="x",
        s3_endpoint_url="aws",
        allow_unregistered_tenants=None,
    )
    services = receiver_services(settings.replaced(allow_unregistered_tenants=True), publisher, FakeJobReader())
    app = create_app(settings, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post(
            "/webhook/generic-job", json={"job_type": "sleep", "parameters": parameters}, headers=HEADERS
        )
    assert (response.status_code, response.json()["error"]) == (422, "test_option_refused")
    assert [detail["loc"][-1] for detail in response.json()["details"]] == named
    assert publisher.events == []
