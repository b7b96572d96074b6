"""``zixly bench big-job`` runs end to end on the test stack, at a small size: it projects its sweeps with the
projector, reuses them on a second run, draws both pages of each in Chromium and prints its tables (times are printed,
never asserted)."""

import psycopg
import pytest
from rich.console import Console

from kernel.settings import Settings
from zixly.bench.big_job import TENANT, Sweep, run_big_job_benchmark
from zixly.bench.dashboard_pages import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is installed by `make test`")


def test_the_big_job_benchmark_projects_its_sweeps_once_and_times_both_pages_of_each(stack: Settings) -> None:
    console = Console(record=True, width=200)
    with psycopg.connect(stack.database, autocommit=True) as connection:  # a first run, whatever ran here before
        connection.execute("DROP DATABASE IF EXISTS zixly_bench_big_job_4x250 WITH (FORCE)")

    timings = run_big_job_benchmark(stack, console, fast=4, slow=250, rounds=2)

    big = Sweep("big", 4, 250)
    bench = stack.replaced(database_url=stack.database_named("zixly_bench_big_job_4x250"))
    with psycopg.connect(bench.database) as connection:
        rows = connection.execute("SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", (big.job_id,))
        assert rows.fetchone() == (4_000,)
        events = connection.execute("SELECT count(*) FROM job_events WHERE job_id = %s", (big.job_id,)).fetchone()
        assert events == (3 + 2 * 4 + 1,)  # requested, started, planned; results and progress per chunk; completed
        status = connection.execute("SELECT status, tenant_id FROM pipeline_jobs WHERE id = %s", (big.job_id,))
        assert status.fetchone() == ("COMPLETED", TENANT)
    assert {name: len(times) for name, times in timings.job_page_ms.items()} == {"small": 2, "big": 2}
    assert {name: len(times) for name, times in timings.explorer_ms.items()} == {"small": 2, "big": 2}
    assert timings.api_bytes["big, every event"] > timings.api_bytes["small, every event"]
    printed = console.export_text()
    assert "sweep explorer: heatmap drawn" in printed
    assert "GET /api/pipelines/jobs/{id}" in printed

    again = Console(record=True, width=200)
    run_big_job_benchmark(stack, again, fast=4, slow=250, rounds=1)
    assert "sweeps projected by this run: small, big" in printed
    assert "sweeps projected by this run: none" in again.export_text()
