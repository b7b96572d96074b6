"""The golden log: events of every type and version, replayed through Kafka into Postgres, must give the committed
tables exactly. It fails when an upcaster or a fold changes what it writes; if that change is intended, bump the
projection's version and rewrite the golden tables with ``ZIXLY_UPDATE_GOLDEN=1 pytest tests/integration/
test_replay_golden.py``, and review the diff like any other change.
"""

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.log_reader import LogReader
from kernel.settings import Settings
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from projections.records import LogRecord
from projections.replay import Replay
from tests.integration.isolated import append_lines, isolated_read_model, record_code_versions, table_contents

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ORDER = {
    "pipeline_jobs": "id",
    "job_events": "log_partition, log_offset",
    "trading_sweep_results": "job_id, ticker, strategy_type, parameters_key",
}


@pytest.fixture(scope="module")
def golden(stack: Settings) -> Iterator[Settings]:
    with isolated_read_model(stack) as settings:
        append_lines(settings, GOLDEN / "events.jsonl")
        record_code_versions(settings)
        asyncio.run(project_live(settings))
        yield settings


async def project_live(settings: Settings) -> None:
    """What the live projector does with the log, batch by batch, through the same store it uses."""
    store = PostgresProjectionStore(settings.database, settings.projector_name)
    projector = Projector(store)
    try:
        async with LogReader(settings, settings.job_events_topic) as reader:
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            async for batch in reader.read(starts, ends, max_records=5):
                await projector.apply([LogRecord(settings.job_events_topic, r.partition, r.offset, r.value, r.headers)
                                       for r in batch])  # fmt: skip
    finally:
        await store.close()


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
    started = [row for row in table_contents(golden, {"job_events": "log_partition, log_offset"})["job_events"]
               if row["event_type"] == "JobStarted"]  # fmt: skip
    assert {row["schema_version"] for row in started} == {2}
    assert {"host": "worker-7", "process_id": 4242, "attempt": 1} in [row["payload"] for row in started]
    assert {"host": "legacy-worker", "process_id": None, "attempt": 1} in [row["payload"] for row in started]
