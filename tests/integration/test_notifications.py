"""Notifications on the real stack: a real SMTP relay (aiosmtpd, STARTTLS required) and a local HTTP sink standing
in for Slack."""

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from kernel.kafka import make_admin, make_consumer
from kernel.settings import Settings
from schemas.identifiers import side_effect_key
from tests.identities import Tenant, create_tenant, create_token
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.local_http import send_json
from tests.local_smtp import LoopbackRelay, Mailbox
from tests.local_tls import server_tls
from tests.producers.test_signed_webhooks import signed


@dataclass
class SlackSink:
    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    failing: bool = False


@pytest.fixture(scope="module")
def relay_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    return server_tls(tmp_path_factory.mktemp("relay-tls"))


@pytest.fixture(scope="module")
def mailbox(relay_tls: tuple[ssl.SSLContext, Path]) -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = LoopbackRelay(box, tls_context=relay_tls[0], require_starttls=True)
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackSink]:
    sink = SlackSink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if sink.failing:
                return send_json(self, 500, {"error": "down"})
            sink.posts.append(json.loads(self.rfile.read(length)))
            sink.keys.append(self.headers.get("Idempotency-Key", ""))
            send_json(self, 200, {"ok": True})

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret"
    try:
        yield sink
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def receiver_url(
    stack: Settings, mailbox: tuple[Mailbox, int], relay_tls: tuple[ssl.SSLContext, Path]
) -> Iterator[str]:
    """The receiver's URL; the module's services (the notifier last) are in SERVICES, for the crash test."""
    env = {
        "ZIXLY_RECEIVER_PORT": "0",
        "ZIXLY_SMTP_PORT": str(mailbox[1]),
        "ZIXLY_SMTP_SECURITY": "starttls",
        "ZIXLY_SMTP_CA_FILE": str(relay_tls[1]),
        "ZIXLY_NOTIFICATION_ATTEMPTS": "2",
    }
    receiver = start_service(stack, "receiver", ["receiver"], RECEIVER_READY, env)
    env["ZIXLY_RECEIVER_PORT"] = str(receiver.port)
    services = [receiver] + [
        start_service(stack, name, [name, "--metrics-port", "0"], METRICS_READY, env)
        for name in ("worker", "projector", "notifier")
    ]
    SERVICES[:] = services
    ENVIRONMENT.update(env)
    try:
        yield f"http://127.0.0.1:{receiver.port}"
    finally:
        for service in SERVICES:
            if service.process.poll() is None:
                service.stop()


SERVICES: list[Service] = []
ENVIRONMENT: dict[str, str] = {}


def notified_tenant(stack: Settings, slack_url: str | None, email: str | None, on: str) -> tuple[Tenant, str]:
    """A registered tenant whose admin configured its notifications with `zixly tenants notify`, and a token."""
    tenant = create_tenant(stack, f"t-{uuid.uuid4().hex[:8]}")
    options = [*(["--slack-webhook-url", slack_url] if slack_url else []), *(["--email", email] if email else [])]
    zixly("tenants", "notify", tenant.id, *options, "--on", on)
    return tenant, create_token(stack, tenant.id)


def zixly(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zixly", *args],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"COLUMNS": "300"},
    )


def run_job(receiver_url: str, tenant: Tenant, token: str, body: dict[str, Any], wait_for: str) -> dict[str, Any]:
    content, headers = signed(body, secret=tenant.secret, tenant=tenant.id, webhook_id=f"msg_{uuid.uuid4().hex}")
    accepted = httpx.post(f"{receiver_url}/webhook/generic-job", content=content, headers=headers)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(accepted.json()["status_url"], headers={"Authorization": f"Bearer {token}"}).json()
        if len(job.get("metrics", {}).get("notifications", [])) >= int(wait_for):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"no notifications recorded: {job}")


def test_a_finished_job_is_announced_on_slack_and_by_mail_and_recorded(
    receiver_url: str, mailbox: tuple[Mailbox, int], slack: SlackSink, stack: Settings
) -> None:
    tenant, token = notified_tenant(stack, slack.url, "ops@example.com", "completed")
    job = run_job(receiver_url, tenant, token, {"job_type": "noop"}, wait_for="2")
    assert job["status"] == "COMPLETED"
    assert {(n["channel"], n["delivered"]) for n in job["metrics"]["notifications"]} == {
        ("slack", True),
        ("email", True),
    }
    assert "secret" not in json.dumps(job["metrics"]["notifications"]), "a Slack URL's secret path is not recorded"
    [key] = [key for post, key in zip(slack.posts, slack.keys, strict=True) if job["job_id"] in post["text"]]
    assert key == side_effect_key(job["job_id"], f"notification:JobCompleted:slack:{slack.url}")
    [(mail, over_tls)] = [
        (m, tls)
        for m, tls in zip(mailbox[0].messages, mailbox[0].over_tls, strict=True)
        if job["job_id"] in m["Subject"]
    ]
    assert mail["To"] == "ops@example.com"
    assert mail["Message-ID"].startswith(
        f"<{side_effect_key(job['job_id'], 'notification:JobCompleted:email:ops@example.com')}@"
    )
    assert over_tls, "the relay got the mail after STARTTLS"


def test_a_failing_notification_is_recorded_without_its_answer_and_never_fails_the_job(
    receiver_url: str, slack: SlackSink, stack: Settings
) -> None:
    tenant, token = notified_tenant(stack, slack.url, None, "failed")
    slack.failing = True
    try:
        job = run_job(
            receiver_url, tenant, token, {"job_type": "sleep", "parameters": {"seconds": 0, "fail": True}}, wait_for="1"
        )
    finally:
        slack.failing = False
    assert job["status"] == "FAILED"  # the job's own outcome, untouched
    [notification] = job["metrics"]["notifications"]
    assert (notification["delivered"], notification["attempts"]) == (False, 2)
    assert notification["error"] == "Slack answered 500"  # what the target said is not echoed


def test_a_jobs_own_payload_cannot_choose_where_notifications_go(
    receiver_url: str, mailbox: tuple[Mailbox, int], slack: SlackSink, stack: Settings
) -> None:
    tenant, token = notified_tenant(stack, None, "owner@example.com", "completed")
    elsewhere = {"notify_slack_webhook_url": slack.url, "notify_email": "attacker@example.com"}
    job = run_job(receiver_url, tenant, token, {"job_type": "noop", "metadata": elsewhere}, wait_for="1")
    assert [n["target"] for n in job["metrics"]["notifications"]] == ["owner@example.com"]
    assert not any(job["job_id"] in post["text"] for post in slack.posts)
    assert not any(job["job_id"] in m["Subject"] and m["To"] == "attacker@example.com" for m in mailbox[0].messages)


def test_only_slacks_webhook_host_is_accepted_as_a_slack_target(stack: Settings) -> None:
    tenant = create_tenant(stack, f"t-{uuid.uuid4().hex[:8]}")
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "https://hooks.slack.com.evil.example/x",
        "http://hooks.slack.com/services/T/B/x",
    ):
        refused = zixly("tenants", "notify", tenant.id, "--slack-webhook-url", url)
        assert refused.returncode != 0
        assert "a Slack target is https://hooks.slack.com/" in refused.stderr + refused.stdout
    assert (
        zixly(
            "tenants", "notify", tenant.id, "--slack-webhook-url", "https://hooks.slack.com/services/T000/B000/xyz"
        ).returncode
        == 0
    )


def completion_offset(stack: Settings, job_id: str) -> tuple[int, int]:
    with psycopg.connect(stack.database) as connection:
        [(partition, offset)] = connection.execute(
            "SELECT log_partition, log_offset FROM job_events WHERE job_id = %s AND event_type = 'JobCompleted'",
            (job_id,),
        ).fetchall()
    return int(partition), int(offset)


async def rewind_notifier(stack: Settings, partition: int, offset: int) -> None:
    """Commits ``offset`` for the notifier's group, as a notifier that died before its commit leaves it; retried
    until the dead member has left the group (its session times out)."""
    tp = TopicPartition(stack.job_events_topic, partition)
    deadline = time.monotonic() + 60
    while True:
        consumer = make_consumer(stack, group_id="zixly-notifier")
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: offset})
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
        finally:
            await consumer.stop()
        await asyncio.sleep(1)


async def committed(stack: Settings, partition: int) -> int:
    admin = make_admin(stack)
    await admin.start()
    try:
        tp = TopicPartition(stack.job_events_topic, partition)
        offsets = await admin.list_consumer_group_offsets("zixly-notifier", partitions=[tp])
        return int(offsets[tp].offset) if tp in offsets else -1
    finally:
        await admin.close()


def test_a_notifier_killed_before_its_commit_does_not_notify_twice(
    receiver_url: str, slack: SlackSink, stack: Settings
) -> None:
    tenant, token = notified_tenant(stack, slack.url, None, "completed")
    job = run_job(receiver_url, tenant, token, {"job_type": "noop"}, wait_for="1")
    assert sum(job["job_id"] in post["text"] for post in slack.posts) == 1
    partition, offset = completion_offset(stack, job["job_id"])

    notifier = SERVICES.pop()
    os.kill(notifier.process.pid, signal.SIGKILL)
    notifier.process.wait()
    asyncio.run(rewind_notifier(stack, partition, offset))  # its JobCompleted is read again by the next notifier
    SERVICES.append(start_service(stack, "notifier", ["notifier", "--metrics-port", "0"], METRICS_READY, ENVIRONMENT))
    deadline = time.monotonic() + 60
    while asyncio.run(committed(stack, partition)) <= offset and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asyncio.run(committed(stack, partition)) > offset, "the new notifier read past the job's outcome"
    assert sum(job["job_id"] in post["text"] for post in slack.posts) == 1, "delivered once, not again"
