"""Inspecting the log and the past, on the golden log: the events CLI, time travel over the read-only API, and the
sync status."""

import json
import os
import subprocess
import sys

import httpx

from kernel.settings import Settings

COMPLETED_JOB = "00000000-0000-4000-8000-000000000002"  # requested, started (v1), progressed, completed twice, notified


def zixly(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "DATABASE_URL": settings.database,
        "ZIXLY_JOB_EVENTS_TOPIC": settings.job_events_topic,
        "COLUMNS": "200",
    }
    return subprocess.run([sys.executable, "-m", "zixly", *args], capture_output=True, text=True, env=env, timeout=60)


def test_events_job_shows_a_jobs_history_and_its_state_as_of_an_offset(golden: Settings) -> None:
    now = zixly(golden, "events", "job", COMPLETED_JOB)
    assert now.returncode == 0, now.stderr
    assert "JobRequested" in now.stdout
    assert "NotificationSent" in now.stdout
    assert "COMPLETED" in now.stdout
    earlier = zixly(golden, "events", "job", COMPLETED_JOB, "--as-of", "1")
    assert "RUNNING" in earlier.stdout
    assert "COMPLETED" not in earlier.stdout.split("state as of offset 1")[1]


def test_events_export_writes_a_tenants_events_as_json_lines_upcast(golden: Settings) -> None:
    exported = zixly(golden, "events", "export", "--tenant", "globex")
    assert exported.returncode == 0, exported.stderr
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    assert events
    assert {event["tenant_id"] for event in events} == {"globex"}
    assert {(e["event_type"], e["schema_version"]) for e in events if e["event_type"] == "JobStarted"} == {
        ("JobStarted", 2)
    }


def test_events_tail_filters_by_type_without_following(golden: Settings) -> None:
    tail = zixly(golden, "events", "tail", "--from-start", "--type", "JobFailed")
    assert tail.returncode == 0, tail.stderr
    lines = [line for line in tail.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "JobFailed" in lines[0]


async def test_time_travel_gives_a_jobs_state_as_of_an_offset_and_as_of_a_time(api: httpx.AsyncClient) -> None:
    at_offset = (await api.get(f"/api/time-travel/jobs/{COMPLETED_JOB}", params={"as_of": 2})).json()
    assert at_offset["state"]["status"] == "RUNNING"
    assert at_offset["state"]["progress"] == 0.5
    assert [e["included"] for e in at_offset["events"]][:4] == [True, True, True, False]
    now = (await api.get(f"/api/time-travel/jobs/{COMPLETED_JOB}")).json()
    assert now["state"]["status"] == "COMPLETED"
    before = await api.get(f"/api/time-travel/jobs/{COMPLETED_JOB}", params={"as_of": "2026-03-01T08:00:00Z"})
    assert before.json()["state"] is None


async def test_the_job_list_as_of_a_time_holds_the_jobs_of_that_moment_in_their_states_then(
    api: httpx.AsyncClient,
) -> None:
    listed = (await api.get("/api/time-travel/jobs", params={"as_of": "2026-03-01T09:00:03Z"})).json()
    assert [(job["id"], job["status"]) for job in listed["jobs"]] == [(COMPLETED_JOB, "RUNNING")]


async def test_time_travel_rejects_a_bad_moment_and_an_unknown_job(api: httpx.AsyncClient) -> None:
    bad = await api.get(f"/api/time-travel/jobs/{COMPLETED_JOB}", params={"as_of": "yesterday"})
    assert bad.status_code == 422
    unknown = await api.get("/api/time-travel/jobs/00000000-0000-4000-8000-00000000ffff")
    assert unknown.status_code == 404
    assert (await api.get("/api/time-travel/jobs")).status_code == 422


async def test_sync_status_reports_each_partition_caught_up(api: httpx.AsyncClient) -> None:
    status = (await api.get("/api/sync-status")).json()
    assert status["caught_up"] is True
    assert [p["lag"] for p in status["partitions"]] == [0, 0, 0]
    assert status["last_event_at"] is not None
