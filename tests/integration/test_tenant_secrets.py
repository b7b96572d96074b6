"""A job names a tenant secret; the worker, logged in as its own role, sends the value: the log, the read model,
the read API and the worker's own log hold only the name."""

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import String, cast, select

from kernel.database import EVERY_TENANT, make_engine, scoped_sync
from kernel.settings import Settings
from schemas.read_model import job_events, pipeline_jobs
from tests.identities import Tenant, bearer, create_tenant, create_token
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.integration.test_notifications import zixly
from tests.local_http import send_json
from tests.producers.test_signed_webhooks import signed

VALUE = f"Bearer crm-{uuid.uuid4().hex}"


@dataclass
class ClientSystem:
    """A tenant's API on loopback that records what it was sent and, carelessly, echoes it."""

    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def client_system() -> Iterator[ClientSystem]:
    system = ClientSystem()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            system.received.append(dict(self.headers.items()))
            send_json(self, 200, {"you_sent": dict(self.headers.items())})

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    system.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield system
    finally:
        server.shutdown()


@dataclass
class Pipeline:
    receiver: str
    worker: Service


@pytest.fixture(scope="module")
def pipeline(stack: Settings, client_system: ClientSystem) -> Iterator[Pipeline]:
    env = {
        "ZIXLY_RECEIVER_PORT": "0",
        "ZIXLY_OUTBOUND_PORTS": f"80,443,{httpx.URL(client_system.url).port}",
    }
    receiver = start_service(stack, "receiver-secrets", ["receiver"], RECEIVER_READY, env)
    env["ZIXLY_RECEIVER_PORT"] = str(receiver.port)
    services = [
        receiver,
        start_service(
            stack,
            "worker-secrets",
            ["worker", "--metrics-port", "0"],
            METRICS_READY,
            env,
        ),
        start_service(
            stack,
            "projector-secrets",
            ["projector", "--metrics-port", "0"],
            METRICS_READY,
            env,
        ),
    ]
    try:
        yield Pipeline(f"http://127.0.0.1:{receiver.port}", services[1])
    finally:
        for service in services:
            service.stop()


def _run(pipeline: Pipeline, tenant: Tenant, token: str, url: str) -> dict[str, Any]:
    body = {"job_type": "http.request", "parameters": {"url": url, "headers": {"Authorization": {"secret": "crm"}}}}
    content, headers = signed(body, tenant.secret, f"msg_{uuid.uuid4().hex}", tenant=tenant.id)
    accepted = httpx.post(f"{pipeline.receiver}/webhook/generic-job", content=content, headers=headers)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = httpx.get(accepted.json()["status_url"], headers=bearer(token)).json()
        if job.get("status") in {"COMPLETED", "FAILED"}:
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {job}")


def _set_secret(tenant_id: str, name: str, value: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "zixly", "tenants", "secrets", "set", tenant_id, name, "--value-stdin"]
    return subprocess.run(command, input=value + "\n", capture_output=True, text=True, check=False)


def _stored_anywhere(stack: Settings, job_id: str, text: str) -> bool:
    engine = make_engine(stack, pool_size=1)
    try:
        with scoped_sync(engine, EVERY_TENANT) as connection:
            in_events = connection.execute(
                select(job_events.c.event_id).where(
                    job_events.c.job_id == job_id, cast(job_events.c.payload, String).contains(text)
                )
            ).first()
            in_row = connection.execute(
                select(pipeline_jobs.c.id).where(
                    pipeline_jobs.c.id == job_id,
                    cast(pipeline_jobs.c.parameters, String).contains(text)
                    | cast(pipeline_jobs.c.result, String).contains(text),
                )
            ).first()
        return in_events is not None or in_row is not None
    finally:
        engine.dispose()


def test_the_worker_sends_a_named_secret_and_nothing_stores_or_shows_its_value(
    stack: Settings, pipeline: Pipeline, client_system: ClientSystem
) -> None:
    tenant = create_tenant(stack, f"sec-{uuid.uuid4().hex[:8]}")
    token = create_token(stack, tenant.id)
    stored = _set_secret(tenant.id, "crm", VALUE)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    assert VALUE not in stored.stdout

    job = _run(pipeline, tenant, token, f"{client_system.url}/contacts")
    assert job["status"] == "COMPLETED", job
    assert client_system.received[-1]["Authorization"] == VALUE  # the client system got the value
    # Its echo is stored with the name in place of the value, and the read API hides even that field.
    assert _stored_anywhere(stack, job["job_id"], "[secret crm]")
    assert job["result"]["json"]["you_sent"]["Authorization"] == "[redacted]"
    assert job["parameters"]["headers"] == {"Authorization": {"secret": "crm"}}
    assert not _stored_anywhere(stack, job["job_id"], VALUE.removeprefix("Bearer "))
    assert VALUE.removeprefix("Bearer ") not in pipeline.worker.log_path.read_text(errors="replace")

    listed = zixly("tenants", "secrets", "list", tenant.id)
    assert "crm" in listed.stdout
    assert VALUE.removeprefix("Bearer ") not in listed.stdout


def test_a_job_cannot_name_another_tenants_secret(
    stack: Settings, pipeline: Pipeline, client_system: ClientSystem
) -> None:
    owner, other = (create_tenant(stack, f"{name}-{uuid.uuid4().hex[:8]}") for name in ("owner", "other"))
    assert _set_secret(owner.id, "crm", VALUE).returncode == 0
    seen = len(client_system.received)
    job = _run(pipeline, other, create_token(stack, other.id), f"{client_system.url}/contacts")
    assert job["status"] == "FAILED"
    assert job["error_message"] == f"tenant {other.id!r} has no secret 'crm' (`zixly tenants secrets set`)"
    assert len(client_system.received) == seen  # nothing was sent without it


def test_a_deleted_secret_is_gone_and_a_bad_name_is_refused(stack: Settings) -> None:
    tenant = create_tenant(stack, f"del-{uuid.uuid4().hex[:8]}")
    assert _set_secret(tenant.id, "crm", VALUE).returncode == 0
    assert zixly("tenants", "secrets", "delete", tenant.id, "crm").returncode == 0
    again = zixly("tenants", "secrets", "delete", tenant.id, "crm")
    assert again.returncode == 1
    assert "has no secret" in again.stdout
    bad = _set_secret(tenant.id, "no spaces", VALUE)
    assert bad.returncode == 2
    assert "letters, digits" in bad.stderr
