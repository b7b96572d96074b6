"""``zixly bench job-list`` runs end to end on the test stack, at a small size: it seeds its jobs, times every API
scenario, the live update and the dashboard's page in Chromium, and prints its tables (times are printed, never
asserted). It once failed at its live-update step on a changed subscribe() for a whole release, unnoticed."""

import psycopg
import pytest
from rich.console import Console

from kernel.settings import Settings
from zixly.bench.dashboard_pages import CHROMIUM
from zixly.bench.job_list import SCENARIOS, run_job_list_benchmark

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is installed by `make test`")


def test_the_job_list_benchmark_times_every_scenario_the_live_update_and_the_page(stack: Settings) -> None:
    with psycopg.connect(stack.database, autocommit=True) as connection:  # a first run, whatever ran here before
        connection.execute("DROP DATABASE IF EXISTS zixly_bench_jobs_2000 WITH (FORCE)")
    console = Console(record=True, width=200)

    run_job_list_benchmark(stack, console, jobs=2_000, rounds=2)

    printed = console.export_text()
    for scenario in SCENARIOS:
        assert scenario.name in printed
    assert "live update: commit to subscriber" in printed
    assert "live update: commit to screen" in printed
    with psycopg.connect(stack.database_named("zixly_bench_jobs_2000")) as connection:
        assert connection.execute("SELECT count(*) FROM pipeline_jobs").fetchone() == (2_000,)
