import json
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from zixly.cli import app
from zixly.job_logs import Wanted, follow, read_all

JOB = "5f0c7c4e-6a49-4d0e-9d43-0a1b2c3d4e5f"
OTHER = "0b7d2a3e-0000-4000-8000-000000000000"


def line(timestamp: str, service: str, event: str, **fields: object) -> str:
    return json.dumps({"timestamp": timestamp, "service": service, "level": "info", "event": event} | fields) + "\n"


def write_logs(folder: Path) -> None:
    (folder / "receiver.log").write_text(
        line("2026-12-03T10:00:00.100Z", "receiver", "job accepted", job_id=JOB, correlation_id="order-7")
        + line("2026-12-03T10:00:00.200Z", "receiver", "job accepted", job_id=OTHER, correlation_id="order-8")
    )
    (folder / "worker-2.log").write_text(
        line("2026-12-03T10:00:00.300Z", "processor", "job attempt finished", job_id=JOB, outcome="completed")
        # The id inside a message about another job is not a line of this job.
        + line("2026-12-03T10:00:00.350Z", "processor", f"waiting behind {JOB}", job_id=OTHER)
    )
    (folder / "projector.log").write_text(
        line("2026-12-03T10:00:00.400Z", "projector", "job outcome projected", job_id=JOB, status="COMPLETED")
    )
    (folder / "notifier.log").write_text(
        line("2026-12-03T10:00:00.500Z", "notifier", "notification delivered", job_id=JOB, channel="slack")
    )
    (folder / "kafka.log").write_text(f"[2026-12-03 10:00:00] INFO a plain line that names {JOB}\n")


def test_a_jobs_lines_from_every_service_come_in_time_order(tmp_path: Path) -> None:
    write_logs(tmp_path)

    found = read_all(tmp_path, Wanted(job_id=JOB))

    assert [(line.source, line.fields["event"]) for line in found] == [
        ("receiver", "job accepted"),
        ("worker-2", "job attempt finished"),
        ("projector", "job outcome projected"),
        ("notifier", "notification delivered"),
    ]


def test_a_correlation_id_finds_the_lines_bound_to_it(tmp_path: Path) -> None:
    write_logs(tmp_path)

    found = read_all(tmp_path, Wanted(correlation_id="order-8"))

    assert [line.fields["job_id"] for line in found] == [OTHER]


def test_following_prints_each_new_line_once_and_waits_for_a_line_to_end(tmp_path: Path) -> None:
    write_logs(tmp_path)
    late = line("2026-12-03T10:00:01Z", "processor", "job attempt finished", job_id=JOB, attempt=2)
    with open(tmp_path / "worker-2.log", "a") as log:
        log.write(late[:20])  # half a line when following starts: printed once it is whole
        log.flush()
        lines = follow(tmp_path, Wanted(job_id=JOB), poll_seconds=0.01, until=time.monotonic() + 2)
        timer = threading.Timer(0.1, lambda: (log.write(late[20:]), log.flush()))
        timer.start()
        followed = list(lines)
        timer.join()

    assert [found.fields for found in followed] == [json.loads(late)]


def test_the_command_prints_the_path_and_fails_when_nothing_names_the_job(tmp_path: Path) -> None:
    write_logs(tmp_path)
    runner = CliRunner()

    shown = runner.invoke(app, ["logs", "--job", JOB, "--dir", str(tmp_path)])
    missing = runner.invoke(app, ["logs", "--job", "no-such-job", "--dir", str(tmp_path)])
    as_json = runner.invoke(app, ["logs", "--job", JOB, "--dir", str(tmp_path), "--json"])

    assert shown.exit_code == 0, shown.output
    events = ["job accepted", "job attempt finished", "job outcome projected", "notification delivered"]
    positions = [shown.output.index(event) for event in events]
    assert positions == sorted(positions)
    assert OTHER not in shown.output
    assert missing.exit_code == 1
    assert "no line" in missing.output
    assert [json.loads(text)["service"] for text in as_json.output.splitlines()] == [
        "receiver",
        "processor",
        "projector",
        "notifier",
    ]
