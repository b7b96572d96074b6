"""Schemathesis against the running receiver's and dashboard's OpenAPI documents, authenticated, with the real
broker and Postgres behind them.

The receiver runs in production mode for a registered tenant: its webhooks reach it signed (through
``tests/signing_proxy.py``) and its reads carry an API token, so the fuzzer gets past authentication and also
checks that a request without the token is refused. It appends to a topic of its own here, so that the jobs the
fuzzer gets accepted (an hour's sleep among them) never reach the workers of the other tests.
"""

import asyncio
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.kafka import ensure_topics
from kernel.settings import Settings
from kernel.topics import TopicSpec
from schemas.access import Role
from tests.identities import create_tenant, create_token
from tests.integration.conftest import DASHBOARD_READY, RECEIVER_READY, start_service
from tests.integration.production import production
from tests.signing_proxy import signing_proxy

FUZZ_TOPIC = "zixly.fuzz-events"


@pytest.fixture(scope="module")
def receiver(stack: Settings) -> Iterator[tuple[str, str]]:
    """The proxied address of a production-mode receiver, and an API token of its tenant."""
    asyncio.run(ensure_topics(stack, [TopicSpec(FUZZ_TOPIC, stack.topic_partitions)]))
    with production(stack) as prod:
        tenant = create_tenant(prod.settings, f"fuzz-{uuid.uuid4().hex[:8]}")
        token = create_token(prod.settings, tenant.id, Role.VIEWER)
        # No projector follows the fuzz topic: status reads that wait for an offset wait this long, not up to 30 s.
        env = prod.env | {
            "ZIXLY_RECEIVER_PORT": "0",
            "ZIXLY_JOB_EVENTS_TOPIC": FUZZ_TOPIC,
            "ZIXLY_STATUS_MAX_WAIT_SECONDS": "0.2",
        }
        receiver = start_service(stack, "receiver-fuzzed", ["receiver"], RECEIVER_READY, env)
        port = receiver.port
        try:
            with signing_proxy(f"http://127.0.0.1:{port}", tenant.id, tenant.secret) as proxied:
                yield proxied, token
        finally:
            receiver.stop()


def schemathesis(openapi_url: str, *options: str) -> None:
    """Every phase, every check but the ones ``options`` exclude; fails the test with schemathesis's report."""
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.fail("schemathesis is in the dev extra; `make test` installs it")
    result = subprocess.run(
        [
            command,
            "run",
            openapi_url,
            "--mode",
            "all",
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "generated" in result.stdout


def test_the_receiver_survives_schemathesis_without_5xx_or_accepted_invalid_input(receiver: tuple[str, str]) -> None:
    url, token = receiver
    schemathesis(
        f"{url}/openapi.json",
        "--seed",
        "20261129",
        "--header",
        f"Authorization: Bearer {token}",
        # The receiver rightly refuses some requests that fit the schema: tickers the data source does not have,
        # grids over the size limit, parameters a strategy does not take. The 422s say why; a schema cannot know
        # the data, so "schema-valid means accepted" does not hold here by design.
        "--exclude-checks",
        "positive_data_acceptance",
    )


@pytest.fixture(scope="module")
def dashboard_url(golden: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": golden.database,
        "ZIXLY_JOB_EVENTS_TOPIC": golden.job_events_topic,
        "ZIXLY_DASHBOARD_PORT": "0",
    }
    server = start_service(golden, "dashboard-fuzzed", ["dashboard"], DASHBOARD_READY, env)
    port = server.port
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_the_read_only_api_survives_schemathesis_without_5xx(dashboard_url: str, golden: Settings) -> None:
    create_tenant(golden, "acme")  # a tenant of the golden log
    token = create_token(golden, "acme", Role.TENANT_ADMIN)
    schemathesis(
        f"{dashboard_url}/openapi.json",
        "--seed",
        "20261130",
        "--header",
        f"Authorization: Bearer {token}",
        # Cursors and as_of are opaque strings to the schema; the API refuses the ones it did not hand out with a
        # 422 that says so, which a schema cannot predict.
        "--exclude-checks",
        "positive_data_acceptance",
        # The subscription is an endless stream by design: it has its own tests.
        "--exclude-path",
        "/api/jobs/subscribe",
    )
