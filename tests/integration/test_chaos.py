"""The chaos loop in CI: 60 s of signed jobs and two trading sweeps while a service is killed with SIGKILL about
every 5 s and replaced (a worker, and every fourth time the projector or the notifier); then every job has exactly
one outcome in the log, each sweep one plan, and each outcome one notification (a delivery in flight at a notifier's
kill may go out again with the same Idempotency-Key, which the report counts apart).

A longer run by hand: ZIXLY_CHAOS_SECONDS=600 .venv/bin/pytest --timeout 1200 tests/integration/test_chaos.py (its
table is printed under "measurements")."""

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from identity.tenants import TenantDirectory
from kernel.database import run_with_engine
from kernel.secret_box import SecretBox
from kernel.settings import Settings
from tests.chaos import (
    ChaosReport,
    Load,
    count_notifications,
    count_the_log,
    finished_ids,
    kill_loop,
    pipeline_env,
    planned_chunks,
    service_starter,
    stories,
    with_own_work_topics,
)
from tests.identities import create_tenant
from tests.integration.conftest import RECEIVER_READY, start_service
from tests.integration.isolated import isolated_read_model
from tests.local_http import send_json
from tests.measurements import report

SECONDS = int(os.environ.get("ZIXLY_CHAOS_SECONDS", "60"))
KILL_EVERY = 5.0
JOBS_PER_SECOND = 40  # 2 shared cores run the load, the receiver, two workers, the projector and the notifier


@pytest.fixture
def slack_sink() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    posts: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            posts.append((self.headers.get("Idempotency-Key", ""), body))
            send_json(self, 200, {"ok": True})

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/chaos", posts
    finally:
        server.shutdown()


def finished(settings: Settings, job_ids: list[str]) -> int:
    return len(finished_ids(settings, job_ids))


@pytest.mark.timeout(SECONDS + 480)
def test_a_minute_of_load_with_a_worker_killed_every_five_seconds_loses_and_repeats_nothing(
    stack: Settings, slack_sink: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    slack_url, posts = slack_sink
    with isolated_read_model(stack, partitions=6) as model:
        settings = with_own_work_topics(model)
        tenant = create_tenant(settings, f"chaos-{uuid.uuid4().hex[:6]}")

        async def notify(engine: Any) -> None:
            box = SecretBox.from_text(settings.master_keys.get_secret_value())
            await TenantDirectory(engine, box).set_notifications(tenant.id, slack_url, None, "completed")

        run_with_engine(settings, notify)
        env = pipeline_env(settings, 0, {"ZIXLY_SWEEP_CHUNK_SIZE": "100"})
        receiver = start_service(settings, "chaos-receiver", ["receiver"], RECEIVER_READY, env)
        env["ZIXLY_RECEIVER_PORT"] = str(receiver.port)  # the workers hand out callback URLs to it
        service = service_starter(settings, env)
        services = {
            "worker": [service("chaos-worker-a", ["worker"]), service("chaos-worker-b", ["worker"])],
            "projector": [service("chaos-projector", ["projector"])],
            "notifier": [service("chaos-notifier", ["notifier"])],
        }
        try:
            load = Load(
                f"http://127.0.0.1:{receiver.port}",
                tenant.id,
                tenant.secret,
                JOBS_PER_SECOND,
                sweeps_at=(1.0, SECONDS / 2),
            )
            sender = threading.Thread(target=load.run, daemon=True)
            sender.start()
            kills = kill_loop(services, lambda role, name: service(name, [role]), SECONDS, KILL_EVERY, random.Random())
            load.stop()
            sender.join()

            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and finished(settings, load.accepted) < len(load.accepted):
                time.sleep(1)
            unfinished = set(load.accepted) - finished_ids(settings, load.accepted)
            assert not unfinished, f"{len(unfinished)} jobs never finished: {stories(settings, sorted(unfinished)[:5])}"
            # The notifier catches up on its own: wait while it makes progress.
            delivered, stalled_since = 0, time.monotonic()
            while (now := time.monotonic()) - stalled_since < 60 and delivered < len(load.accepted):
                time.sleep(1)
                if (seen := len({key for key, _ in posts})) > delivered:
                    delivered, stalled_since = seen, now
            time.sleep(2)  # and a repeat, if any, has its chance to arrive
            outcome = ChaosReport(
                requested=load.sent,
                accepted=len(load.accepted),
                kills=kills.total(),
                worker_kills=kills["worker"],
                projector_kills=kills["projector"],
                notifier_kills=kills["notifier"],
                sweeps=len(load.sweeps),
            )
            outcome.sweep_chunks = planned_chunks(settings, load.sweeps)
            count_the_log(settings, load.accepted, load.sweeps, outcome)
            count_notifications(posts, load.accepted, outcome)
        finally:
            for running in [receiver, *(one for pool in services.values() for one in pool)]:
                if running.process.poll() is None:
                    running.stop()
        report(
            f"chaos loop: {SECONDS} s at {JOBS_PER_SECOND} jobs/s, a kill every ~{KILL_EVERY:g} s (every 4th the "
            f"projector or the notifier)\n"
            f"{outcome.table()}"
        )
        assert outcome.accepted == outcome.requested, outcome.table()
        assert outcome.lost == 0, outcome.table()
        assert outcome.duplicate_outcomes == 0, f"{outcome.table()}\n{stories(settings, outcome.twice[:3])}"
        assert outcome.duplicate_notifications == 0, outcome.table()
        assert outcome.notifications_delivered == outcome.completed, outcome.table()
        assert outcome.kills >= SECONDS // KILL_EVERY // 2, "the loop killed services all along"
        assert outcome.projector_kills >= 1, outcome.table()
        assert outcome.notifier_kills >= 1, outcome.table()
        assert outcome.sweeps == 2, outcome.table()
        assert outcome.duplicate_sweep_plans == 0, outcome.table()
