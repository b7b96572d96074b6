"""Test-wide set-up: the tests' own local stack lives in .zixly/test on ports of its own.

A developer's `zixly up` (ports 9092/5432) can run beside the tests. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, when
set, point the tests at existing servers instead.
"""

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST_ENVIRONMENT = {
    "ZIXLY_ENV": "development",
    "ZIXLY_HOME": str(ROOT / ".zixly" / "test"),
    "ZIXLY_CACHE_DIR": str(ROOT / ".zixly" / "cache"),
    "ZIXLY_KAFKA_PORT": "19092",
    "ZIXLY_KAFKA_CONTROLLER_PORT": "19093",
    "ZIXLY_POSTGRES_PORT": "15432",
    "ZIXLY_S3_PORT": "19000",
    "ZIXLY_JOB_EVENTS_TOPIC": "zixly.job-events",
    # Several dashboards run at once in the suite: each takes a port the system picks.
    "ZIXLY_DASHBOARD_METRICS_PORT": "0",
    "ZIXLY_HTTP_ALLOWED_HOSTS": "127.0.0.1,localhost",
    # The tests' own servers (a client system, Slack, a market-data API) listen on loopback: named as internal.
    "ZIXLY_OUTBOUND_INTERNAL_HOSTS": "127.0.0.1,localhost",
}
for name, value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(name, value)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.measurements import reported

    if lines := reported():
        terminalreporter.section("measurements")
        for line in lines:
            terminalreporter.write_line(line)
