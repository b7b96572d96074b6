"""Production mode with real processes: a service refuses to start on development secrets, naming each; a running
receiver takes only signed webhooks of registered tenants, keys them by the signed id, and binds a cancel to its
job; its status reads need a token."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from kernel.settings import Settings
from schemas.access import Role
from tests.identities import Tenant, bearer, create_tenant, create_token
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, start_service
from tests.integration.production import Production, production
from tests.producers.test_signed_webhooks import signed


@pytest.mark.parametrize("service", ["receiver", "worker", "projector", "dashboard", "notifier"])
def test_a_service_refuses_to_start_in_production_on_development_secrets_and_names_them(service: str) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ZIXLY_")}
    result = subprocess.run(
        [sys.executable, "-m", "zixly", service],
        env=env | {"ZIXLY_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    for named in ("ZIXLY_CALLBACK_SECRET", "ZIXLY_MASTER_KEYS", "ZIXLY_SESSION_KEYS", "ZIXLY_DASHBOARD_DATABASE_URL"):
        assert named in result.stderr, result.stderr


def test_development_mode_refuses_to_listen_beyond_loopback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zixly", "receiver"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"ZIXLY_ENV": "development", "ZIXLY_RECEIVER_HOST": "0.0.0.0"},
    )
    assert result.returncode != 0
    assert "ZIXLY_RECEIVER_HOST=0.0.0.0 is not a loopback address" in result.stderr


@pytest.fixture(scope="module")
def prod(stack: Settings) -> Iterator[Production]:
    with production(stack) as running:
        yield running


@pytest.fixture(scope="module")
def tenant(prod: Production) -> Tenant:
    return create_tenant(prod.settings, f"prod-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def receiver(stack: Settings, prod: Production) -> Iterator[str]:
    receiver = start_service(
        stack, "receiver-production", ["receiver"], RECEIVER_READY, prod.env | {"ZIXLY_RECEIVER_PORT": "0"}
    )
    services = [
        receiver,
        start_service(
            stack,
            "projector-production",
            ["projector", "--metrics-port", "0"],
            METRICS_READY,
            prod.env,
        ),
    ]
    try:
        yield f"http://127.0.0.1:{receiver.port}"
    finally:
        for service in services:
            service.stop()


def test_unsigned_and_unknown_tenants_are_401_and_a_signed_webhook_is_202(receiver: str, tenant: Tenant) -> None:
    unsigned = httpx.post(
        f"{receiver}/webhook/generic-job", json={"job_type": "noop"}, headers={"X-Tenant-ID": tenant.id}
    )
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "missing_signature_header")
    stranger = httpx.post(
        f"{receiver}/webhook/generic-job", json={"job_type": "noop"}, headers={"X-Tenant-ID": "nobody-registered"}
    )
    assert (stranger.status_code, stranger.json()["error"]) == (401, "unknown_tenant")
    content, headers = signed(
        {"job_type": "noop"}, secret=tenant.secret, tenant=tenant.id, webhook_id=f"msg_{uuid.uuid4().hex}"
    )
    accepted = httpx.post(f"{receiver}/webhook/generic-job", content=content, headers=headers)
    assert accepted.status_code == 202, accepted.text


def test_a_replayed_signed_body_with_a_fresh_idempotency_key_creates_no_second_job(
    receiver: str, tenant: Tenant
) -> None:
    content, headers = signed(
        {"job_type": "noop"}, secret=tenant.secret, tenant=tenant.id, webhook_id=f"msg_{uuid.uuid4().hex}"
    )
    first = httpx.post(f"{receiver}/webhook/generic-job", content=content, headers=headers | {"Idempotency-Key": "1"})
    again = httpx.post(f"{receiver}/webhook/generic-job", content=content, headers=headers | {"Idempotency-Key": "2"})
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (first.json()["partition"], first.json()["offset"]) == (again.json()["partition"], again.json()["offset"])
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_captured_cancel_cannot_cancel_another_job_and_reads_need_a_token(
    receiver: str, tenant: Tenant, prod: Production
) -> None:
    jobs = []
    for _ in range(2):
        content, headers = signed(
            {"job_type": "sleep", "parameters": {"seconds": 3}},
            secret=tenant.secret,
            tenant=tenant.id,
            webhook_id=f"msg_{uuid.uuid4().hex}",
        )
        jobs.append(httpx.post(f"{receiver}/webhook/generic-job", content=content, headers=headers).json()["job_id"])
    mine, other = jobs
    token = create_token(prod.settings, tenant.id, Role.VIEWER)
    deadline = time.monotonic() + 30
    while httpx.get(f"{receiver}/webhook/jobs/{other}", headers=bearer(token)).status_code != 200:
        assert time.monotonic() < deadline, "the job was not projected"
        time.sleep(0.2)
    assert httpx.get(f"{receiver}/webhook/jobs/{other}", headers={"X-Tenant-ID": tenant.id}).status_code == 401

    content, headers = signed(
        {"job_id": mine, "reason": "not needed"},
        secret=tenant.secret,
        tenant=tenant.id,
        webhook_id=f"msg_{uuid.uuid4().hex}",
    )
    captured = httpx.post(f"{receiver}/webhook/jobs/{other}/cancel", content=content, headers=headers)
    assert (captured.status_code, captured.json()["error"]) == (422, "job_id_mismatch")
    meant = httpx.post(f"{receiver}/webhook/jobs/{mine}/cancel", content=content, headers=headers)
    assert meant.status_code == 202, meant.text
