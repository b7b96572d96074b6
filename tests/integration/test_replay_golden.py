"""The golden log: events of every type and version, replayed through Kafka into Postgres, must give the committed
tables exactly. It fails when an upcaster or a fold changes what it writes; if that change is intended, bump the
projection's version and rewrite the golden tables with ``ZIXLY_UPDATE_GOLDEN=1 pytest tests/integration/
test_replay_golden.py``, and review the diff like any other change.
"""

import asyncio
import json
import os

from kernel.settings import Settings
from projections.replay import Replay
from tests.integration.isolated import GOLDEN, table_contents

ORDER = {
    "pipeline_jobs": "id",
    "job_events": "log_partition, log_offset",
    "trading_sweep_results": "job_id, ticker, strategy_type, parameters_key",
    "job_counts_hourly": "hour, tenant_id, job_type, status, error_type",
    "job_durations_hourly": "hour, tenant_id, job_type, bucket",
}


def test_the_golden_log_projects_live_and_replays_to_the_committed_tables(golden: Settings) -> None:
    live = table_contents(golden, ORDER)

    # Same code, same log, same offsets: a replay that differed from the live tables would refuse to swap.
    report = asyncio.run(Replay(golden, processes=2).run())
    assert report.swapped
    assert report.comparable
    assert all(check.matches for check in report.checks), report.checks
    assert table_contents(golden, ORDER) == live

    expected_path = GOLDEN / "tables.json"
    if os.environ.get("ZIXLY_UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(live, indent=1, sort_keys=True) + "\n")
    expected = json.loads(expected_path.read_text())
    for table in ORDER:
        assert live[table] == expected[table], f"{table} differs from the golden output"


def test_the_golden_log_reads_version_1_events_through_the_upcaster(golden: Settings) -> None:
    started = [
        row
        for row in table_contents(golden, {"job_events": "log_partition, log_offset"})["job_events"]
        if row["event_type"] == "JobStarted"
    ]
    assert {row["schema_version"] for row in started} == {2}
    assert {"host": "worker-7", "process_id": 4242, "attempt": 1} in [row["payload"] for row in started]
    assert {"host": "legacy-worker", "process_id": None, "attempt": 1} in [row["payload"] for row in started]
