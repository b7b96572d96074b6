"""A webhook travels the whole pipeline: receiver → Kafka → Faust worker → projector → Postgres."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import TopicPartition
from standardwebhooks.webhooks import Webhook

from kernel.kafka import make_consumer
from kernel.settings import Settings
from tests.integration.conftest import RunningPipeline, start_service
from tests.local_http import local_http_server


def submit(pipeline: RunningPipeline, tenant: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{pipeline.receiver_url}/webhook/generic-job", json=body, headers={"X-Tenant-ID": tenant, **headers}
    )


def wait_for_status(
    url: str, tenant: str, statuses: set[str], timeout: float = 60, token: str | None = None
) -> dict[str, Any]:
    """Polls the status URL: with the tenant's API token, or (an unregistered tenant in development) its header."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-Tenant-ID": tenant}
    while time.monotonic() < deadline:
        last = httpx.get(url, headers=headers)
        if last.status_code == 200 and last.json()["status"] in statuses:
            body: dict[str, Any] = last.json()
            return body
        time.sleep(0.1)
    raise AssertionError(f"job did not reach {statuses}: {last.text if last else 'no answer'}")


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def job_event_types(settings: Settings, job_id: str) -> list[str]:
    with psycopg.connect(settings.database) as connection:
        rows = connection.execute(
            "SELECT event_type FROM job_events WHERE job_id = %s ORDER BY log_offset", (job_id,)
        ).fetchall()
    return [row[0] for row in rows]


def test_a_posted_job_is_completed_in_pipeline_jobs_with_its_events_in_job_events(
    pipeline: RunningPipeline, stack: Settings, tenant: str
) -> None:
    accepted = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 0.3, "progress_steps": 3}})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    job = wait_for_status(body["status_url"], tenant, {"COMPLETED"})
    assert job["result"] == {"slept_seconds": 0.3}
    assert job["attempts"] == 1
    assert job["started_at"] is not None
    assert job["completed_at"] is not None
    assert job_event_types(stack, body["job_id"]) == [
        "JobRequested",
        "JobStarted",
        "JobProgressed",
        "JobProgressed",
        "JobCompleted",
    ]


def test_a_failing_job_is_failed_with_its_error(pipeline: RunningPipeline, tenant: str) -> None:
    accepted = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 0, "fail": True}})
    job = wait_for_status(accepted.json()["status_url"], tenant, {"FAILED"})
    assert job["error_message"] == "the job was asked to fail"


def test_an_http_request_job_calls_a_client_system(pipeline: RunningPipeline, tenant: str) -> None:
    with local_http_server() as server:
        accepted = submit(
            pipeline,
            tenant,
            {
                "job_type": "http.request",
                "parameters": {"url": f"{server}/notify", "method": "POST", "json_body": {"hello": "world"}},
            },
        )
        job = wait_for_status(accepted.json()["status_url"], tenant, {"COMPLETED", "FAILED"})
    assert job["status"] == "COMPLETED", job
    assert job["result"]["json"]["received"] == '{"hello":"world"}'


def test_many_concurrent_jobs_all_complete_exactly_once(
    pipeline: RunningPipeline, stack: Settings, tenant: str
) -> None:
    with httpx.Client() as client:
        job_ids = []
        for i in range(100):
            response = client.post(
                f"{pipeline.receiver_url}/webhook/generic-job",
                json={"job_type": "noop", "parameters": {"echo": {"i": i}}},
                headers={"X-Tenant-ID": tenant},
            )
            assert response.status_code == 202
            job_ids.append(response.json()["job_id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg.connect(stack.database) as connection:
            done = connection.execute(
                "SELECT count(*) FROM pipeline_jobs WHERE tenant_id = %s AND status = 'COMPLETED'", (tenant,)
            ).fetchone()
        if done and done[0] == 100:
            break
        time.sleep(0.2)
    with psycopg.connect(stack.database) as connection:
        rows = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM pipeline_jobs WHERE tenant_id = %s", (tenant,)
        ).fetchone()
        completed_events = connection.execute(
            "SELECT count(*) FROM job_events WHERE tenant_id = %s AND event_type = 'JobCompleted'", (tenant,)
        ).fetchone()
    assert rows == (100, 100)
    assert completed_events == (100,)


def test_duplicate_and_concurrent_redeliveries_of_a_webhook_create_exactly_one_job(
    pipeline: RunningPipeline, stack: Settings, tenant: str
) -> None:
    body = {"job_type": "sleep", "parameters": {"seconds": 0.2}}
    key = {"Idempotency-Key": "delivery-1"}
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: submit(pipeline, tenant, body, **key), range(20)))
    answers.append(submit(pipeline, tenant, body, **key))  # and one more, late
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["job_id"] for a in answers}) == 1
    assert len({(a.json()["partition"], a.json()["offset"]) for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 20

    job = wait_for_status(answers[0].json()["status_url"], tenant, {"COMPLETED"})
    partition = answers[0].json()["partition"]
    assert requests_in_log(stack, job["job_id"], partition) == 1
    assert job_event_types(stack, job["job_id"]).count("JobStarted") == 1

    conflicting = submit(pipeline, tenant, {"job_type": "noop"}, **key)
    assert conflicting.status_code == 409


def requests_in_log(settings: Settings, job_id: str, partition: int) -> int:
    """JobRequested records of one job in its partition of the log itself, not in a projection."""

    async def count() -> int:
        consumer = make_consumer(settings, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(settings.job_events_topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            found = 0
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    headers = dict(record.headers or ())
                    if record.key == job_id.encode() and headers.get("event_type") == b"JobRequested":
                        found += 1
            return found
        finally:
            await consumer.stop()

    return asyncio.run(count())


def test_health_reports_kafka_and_postgres_ready(pipeline: RunningPipeline) -> None:
    health = httpx.get(f"{pipeline.receiver_url}/health")
    assert health.status_code == 200
    assert health.json()["checks"]["kafka"]["ok"] is True
    assert health.json()["checks"]["postgres"]["ok"] is True


def test_workers_and_projector_expose_prometheus_metrics(pipeline: RunningPipeline, tenant: str) -> None:
    accepted = submit(pipeline, tenant, {"job_type": "noop"})
    wait_for_status(accepted.json()["status_url"], tenant, {"COMPLETED"})
    worker = httpx.get(pipeline.worker_metrics_url).text
    assert 'zixly_jobs_finished_total{job_type="noop",outcome="completed"}' in worker
    assert "zixly_job_duration_seconds_bucket" in worker
    projector = httpx.get(pipeline.projector_metrics_url).text
    assert 'zixly_projector_events_applied_total{event_type="JobCompleted"}' in projector
    assert "zixly_projector_batch_seconds_bucket" in projector
    receiver = httpx.get(f"{pipeline.receiver_url}/metrics").text
    assert 'zixly_events_produced_total{event_type="JobRequested"}' in receiver


def test_kcat_reading_the_topic_shows_the_full_envelope_keyed_by_job_id(
    pipeline: RunningPipeline, stack: Settings, tenant: str
) -> None:
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        pytest.skip("kcat is not installed here; `make test` installs it from Debian's packages")
    accepted = submit(pipeline, tenant, {"job_type": "noop"})
    job_id = accepted.json()["job_id"]
    partition = accepted.json()["partition"]
    output = subprocess.run(
        [
            kcat,
            "-C",
            "-b",
            stack.kafka_bootstrap,
            "-t",
            stack.job_events_topic,
            "-p",
            str(partition),
            "-o",
            str(accepted.json()["offset"]),
            "-c",
            "1",
            "-e",
            "-q",
            "-J",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    record = json.loads(output.splitlines()[0])
    assert record["key"] == job_id
    envelope = json.loads(record["payload"])
    assert envelope["event_type"] == "JobRequested"
    assert envelope["job_id"] == job_id
    assert envelope["tenant_id"] == tenant
    assert {"event_id", "schema_version", "occurred_at", "correlation_id", "causation_id", "producer"} <= set(envelope)
    assert "event_type" in {h for h in record["headers"][::2]}


@pytest.fixture
def receiver_without_broker(stack: Settings) -> Iterator[str]:
    """A receiver whose broker address answers nothing: as when Kafka is down."""
    # A port bound and never listened on refuses every connection, and no one else can take it meanwhile.
    with socket.socket() as nothing:
        nothing.bind(("127.0.0.1", 0))
        env = {
            "ZIXLY_RECEIVER_PORT": "0",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{nothing.getsockname()[1]}",
            "DATABASE_URL": stack.database,
            "ZIXLY_PUBLISH_TIMEOUT_SECONDS": "1",
        }
        service = start_service(stack, "receiver-no-broker", ["receiver"], "http://127.0.0.1:{port}/health/live", env)
        try:
            yield f"http://127.0.0.1:{service.port}"
        finally:
            service.stop()


def test_without_a_broker_the_receiver_answers_503_and_says_why(receiver_without_broker: str) -> None:
    response = httpx.post(
        f"{receiver_without_broker}/webhook/generic-job", json={"job_type": "noop"}, headers={"X-Tenant-ID": "acme"}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
    health = httpx.get(f"{receiver_without_broker}/health")
    assert health.status_code == 503
    assert health.json()["checks"]["kafka"]["ok"] is False
    assert health.json()["checks"]["postgres"]["ok"] is True


def zixly(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "zixly", *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"COLUMNS": "400"},
    )
    return result.stdout


def signed_post(pipeline: RunningPipeline, tenant: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    data = json.dumps(body)
    now = datetime.now(UTC)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "Content-Type": "application/json",
        "X-Tenant-ID": tenant,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, data),
    }
    return httpx.post(f"{pipeline.receiver_url}/webhook/generic-job", content=data, headers=headers)


def test_a_tenant_created_with_the_cli_must_sign_and_can_rotate_its_secret(
    pipeline: RunningPipeline, tenant: str
) -> None:
    first = zixly("tenants", "create", tenant, "--name", "Signed Inc.").strip().splitlines()[-1]
    assert first.startswith("whsec_")
    unsigned = submit(pipeline, tenant, {"job_type": "noop"})
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "missing_signature_header")

    accepted = signed_post(pipeline, tenant, first, {"job_type": "noop"})
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    by_header = httpx.get(status_url, headers={"X-Tenant-ID": tenant})
    assert (by_header.status_code, by_header.json()["error"]) == (401, "token_required")
    token = zixly("tokens", "create", "--tenant", tenant, "--role", "viewer", "--expires-in", "1d").split()[-1]
    assert token.startswith("zxt_")
    assert wait_for_status(status_url, tenant, {"COMPLETED"}, token=token)["status"] == "COMPLETED"
    token_id = token.removeprefix("zxt_").split("_")[0]
    listed = zixly("tokens", "list", "--tenant", tenant)
    assert "active" in listed
    # The secret is shown once, never listed (it may hold "_" itself: all of it after the id).
    assert token.removeprefix("zxt_").split("_", 1)[1] not in listed
    zixly("tokens", "revoke", str(uuid.UUID(hex=token_id)))
    revoked = httpx.get(status_url, headers={"Authorization": f"Bearer {token}"})
    assert (revoked.status_code, revoked.json()["message"]) == (401, "the token is revoked")

    second = zixly("tenants", "rotate", tenant, "--overlap-hours", "1").strip().splitlines()[-1]
    time.sleep(5.5)  # the receiver caches a tenant's secrets for 5 s
    assert signed_post(pipeline, tenant, second, {"job_type": "noop"}).status_code == 202
    assert signed_post(pipeline, tenant, first, {"job_type": "noop"}).status_code == 202  # still in its overlap
    assert tenant in zixly("tenants", "list")
