"""Trading sweeps on the real stack: receiver, two workers, projector, Postgres and the S3 endpoint."""

import asyncio
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pyarrow.parquet as pq
import pytest

from kernel.kafka import make_producer
from kernel.object_store import ObjectStore
from kernel.settings import Settings
from market_data.providers import MarketData
from processors.runtime import market_data_config
from processors.sweeps.compute import fingerprints
from processors.sweeps.grid import plan_chunks
from processors.sweeps.planner import SweepPlanner
from producers.submission import job_requested
from schemas.codec import encode
from schemas.events import (
    JobStarted,
    JobStartedPayload,
    SweepPlanned,
    SweepPlannedPayload,
    derived_event_id,
    follow_up,
)
from schemas.sweeps import SWEEP_JOB_TYPE, DataSource, TradingSweepParameters, TradingSweepWebhook
from schemas.webhooks import GenericJobWebhook
from tests.chaos import finished_ids, pipeline_env, service_starter, with_own_work_topics
from tests.external_backtests import ExternalBacktests, external_backtests
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.integration.isolated import isolated_read_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trading-sweep.json"


class SweepPipeline:
    def __init__(self, receiver_url: str, workers: list[Service]) -> None:
        self.receiver_url = receiver_url
        self.workers = workers


EXTERNAL_TENANT = "external-backtests"


@pytest.fixture(scope="module")
def external() -> Iterator[ExternalBacktests]:
    with external_backtests() as service:
        yield service


@pytest.fixture(scope="module")
def sweeps(stack: Settings, external: ExternalBacktests) -> Iterator[SweepPipeline]:
    """Receiver, projector and two workers of one consumer group, with small chunks so that a sweep spreads."""
    env = {
        "ZIXLY_RECEIVER_PORT": "0",
        "ZIXLY_SWEEP_CHUNK_SIZE": "100",
        "ZIXLY_SWEEP_EXTERNAL_SERVICES": f"{EXTERNAL_TENANT}={external.url}",
    }
    receiver = start_service(stack, "receiver", ["receiver"], RECEIVER_READY, env)
    env["ZIXLY_RECEIVER_PORT"] = str(receiver.port)  # where the workers send the external service's callbacks
    workers = [
        start_service(stack, name, ["worker", "--metrics-port", "0"], METRICS_READY, env)
        for name in ("worker-a", "worker-b")
    ]
    services = [receiver, start_service(stack, "projector", ["projector", "--metrics-port", "0"], METRICS_READY, env)]
    try:
        yield SweepPipeline(f"http://127.0.0.1:{receiver.port}", workers)
    finally:
        for service in [*services, *workers]:
            if service.process.poll() is None:
                service.stop()


def submit_sweep(sweeps: SweepPipeline, tenant: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{sweeps.receiver_url}/webhook/trading-sweep", json=body, headers={"X-Tenant-ID": tenant})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def wait_until_done(sweeps: SweepPipeline, tenant: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{sweeps.receiver_url}/webhook/jobs/{job_id}", headers={"X-Tenant-ID": tenant})
        if response.status_code == 200:
            job = response.json()
            if job["status"] in ("COMPLETED", "FAILED"):
                return job
        time.sleep(0.2)
    raise AssertionError(f"sweep {job_id} did not finish: {job}")


def query(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database) as connection:
        return connection.execute(sql, args).fetchall()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_the_readme_sweep_completes_with_ranked_results_in_postgres_and_artifacts_in_s3(
    sweeps: SweepPipeline, stack: Settings, tenant: str
) -> None:
    body = json.loads(EXAMPLE.read_text())
    sweep = TradingSweepParameters.model_validate(body)
    combinations = [len(grid.combinations()) for grid in sweep.strategies]
    assert all(count >= 100 for count in combinations), "the example promises 100+ combinations per strategy"
    job_id = submit_sweep(sweeps, tenant, body)

    job = wait_until_done(sweeps, tenant, job_id)
    assert job["status"] == "COMPLETED", job["error_message"]
    result = job["result"]
    assert result["backtests"] == len(sweep.tickers) * sum(combinations)
    [(rows,)] = query(stack, "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", job_id)
    assert rows == result["backtests"]

    # The best cell per ticker in the table is the summary's rank 1, and it carries out-of-sample metrics.
    best = dict(
        query(
            stack,
            """
        SELECT DISTINCT ON (ticker) ticker, parameters_key FROM trading_sweep_results
        WHERE job_id = %s ORDER BY ticker, score DESC NULLS LAST, parameters_key""",
            job_id,
        )
    )
    for ticker in result["tickers"]:
        top = ticker["best"][0]
        assert best[ticker["ticker"]] == ",".join(f"{k}={v:g}" for k, v in sorted(top["parameters"].items()))
        assert top["out_of_sample"] is not None
        # Each strategy says which signal it ran: the example asks for crossings of its SMAs, regimes elsewhere.
        assert {s["strategy_type"]: s["signal"] for s in ticker["strategies"]} == {
            g.type.value: g.signal.value for g in sweep.strategies
        }
        assert {s["signal"] for s in ticker["strategies"]} == {"regime", "crossing"}

    # Every job records which data it used.
    market = MarketData(files_folder=stack.market_data_folder, http_base_url=None)
    assert {d["ticker"]: d["sha256"] for d in result["data"]} == {
        t: market.load(DataSource.BUNDLED, t, None, None).sha256() for t in sweep.tickers
    }

    store = ObjectStore(stack)
    artifacts = result["artifacts"]
    assert artifacts["results_prefix"].startswith(f"tenants/{tenant}/")
    parts = [pq.read_table(io.BytesIO(store.get(key))) for key in artifacts["result_parts"]]
    assert sum(part.num_rows for part in parts) == rows
    assert len(artifacts["equity_curves"]) == len(sweep.tickers) * stack.sweep_top_cells
    curve = pq.read_table(io.BytesIO(store.get(artifacts["equity_curves"][0])))
    assert curve.column_names == ["date", "equity"]
    assert json.loads(store.get(artifacts["summary"]))["backtests"] == rows


WALK_FORWARD = {
    "tickers": ["WALK"],
    "data_source": "synthetic",
    "start": "2015-01-01",
    "end": "2024-12-31",  # ten years of business days: 2,609 bars
    "strategies": [
        {"type": "sma_crossover", "parameters": {"fast": [5, 10, 20], "slow": [50, 100, 200]}},
        {"type": "momentum", "parameters": {"window": [10, 20, 60], "threshold": [0, 0.01]}, "signal": "crossing"},
    ],
    "rank_by": "sharpe",
    "validation": {"walk_forward": {"train_bars": 1000, "test_bars": 300}},
}


FOLDS_SQL = """
SELECT (f->>'fold')::int AS fold, f->'test'->>'first' AS tested_from, f->'parameters' AS chosen,
       (f->>'in_sample_score')::float8 AS in_sample, (f->>'out_of_sample_score')::float8 AS out_of_sample
FROM pipeline_jobs, jsonb_array_elements(result->'tickers') t, jsonb_array_elements(t->'walk_forward') w,
     jsonb_array_elements(w->'folds') f
WHERE id = %s AND w->>'strategy_type' = %s ORDER BY 1
"""


def test_a_walk_forward_ranks_each_fold_in_postgres_and_stitches_its_test_windows_in_s3(
    sweeps: SweepPipeline, stack: Settings, tenant: str
) -> None:
    job_id = submit_sweep(sweeps, tenant, WALK_FORWARD)
    job = wait_until_done(sweeps, tenant, job_id)
    assert job["status"] == "COMPLETED", job["error_message"]
    result = job["result"]
    assert result["backtests"] == 5 * (9 + 6)
    per_fold = query(
        stack,
        "SELECT fold, strategy_type, count(*) FROM trading_sweep_results WHERE job_id = %s GROUP BY 1, 2 ORDER BY 1, 2",
        job_id,
    )
    assert per_fold == [(fold, s, n) for fold in range(5) for s, n in (("momentum", 6), ("sma_crossover", 9))]

    [ticker] = result["tickers"]
    assert ticker["best"] == []
    reports = {report["strategy_type"]: report for report in ticker["walk_forward"]}
    assert {name: report["signal"] for name, report in reports.items()} == {
        "sma_crossover": "regime",
        "momentum": "crossing",
    }
    store = ObjectStore(stack)
    for strategy_type, report in reports.items():
        folds = report["folds"]
        assert [fold["fold"] for fold in folds] == [0, 1, 2, 3, 4]
        assert all(fold["train"]["bars"] == 1000 and fold["test"]["bars"] == 300 for fold in folds)
        # Rolling windows: each test window starts where its training ends, and the next fold is one test later.
        assert [fold["test"]["start_bar"] for fold in folds] == [1000, 1300, 1600, 1900, 2200]
        assert [fold["train"]["start_bar"] for fold in folds] == [0, 300, 600, 900, 1200]
        # Each fold trades what its own training window ranked first in the table.
        best = dict(
            query(
                stack,
                """SELECT DISTINCT ON (fold) fold, parameters FROM trading_sweep_results
                   WHERE job_id = %s AND strategy_type = %s ORDER BY fold, score DESC NULLS LAST, parameters_key""",
                job_id,
                strategy_type,
            )
        )
        assert [fold["parameters"] for fold in folds] == [best[index] for index in range(5)]
        # One row per fold in SQL, as docs/sweeps.md shows it.
        fold_rows = query(stack, FOLDS_SQL, job_id, strategy_type)
        assert fold_rows == [
            (
                fold["fold"],
                fold["test"]["first"],
                fold["parameters"],
                fold["in_sample_score"],
                fold["out_of_sample_score"],
            )
            for fold in folds
        ]
        changes = sum(a["parameters"] != b["parameters"] for a, b in itertools.pairwise(folds))
        assert report["parameter_changes"] == changes
        assert report["out_of_sample"]["total_return"] == pytest.approx(
            np.prod([1 + fold["out_of_sample"]["total_return"] for fold in folds]) - 1, abs=1e-9
        )
        curve = pq.read_table(io.BytesIO(store.get(report["curve_key"])))
        assert curve.column_names == ["date", "fold", "equity", "buy_and_hold"]
        assert curve.num_rows == 5 * 300
        assert report["curve_key"] in result["artifacts"]["equity_curves"]
        assert report["curve_key"].startswith(f"tenants/{tenant}/jobs/{job_id}/")


def test_a_walk_forward_longer_than_the_data_is_refused_with_the_numbers(sweeps: SweepPipeline, tenant: str) -> None:
    body = {**WALK_FORWARD, "validation": {"walk_forward": {"train_bars": 2500, "test_bars": 200}}}
    response = httpx.post(f"{sweeps.receiver_url}/webhook/trading-sweep", json=body, headers={"X-Tenant-ID": tenant})
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert detail["loc"] == ["validation", "walk_forward"]
    assert detail["msg"] == "WALK has 2,609 bars; a walk-forward fold needs train_bars + test_bars = 2,700"


def test_a_sweep_ranked_by_neighbourhood_chooses_the_best_plateau_of_its_grid_in_postgres(
    sweeps: SweepPipeline, stack: Settings, tenant: str
) -> None:
    axes = {"fast": [5, 10, 15, 20, 25, 30], "slow": [40, 60, 80, 100, 120]}
    body = {
        "tickers": ["AAPL"],
        "strategies": [{"type": "sma_crossover", "parameters": axes}],
        "data_source": "bundled",
        "rank_by": "sharpe",
        "rank_by_neighbourhood": True,
    }
    job_id = submit_sweep(sweeps, tenant, body)
    job = wait_until_done(sweeps, tenant, job_id)
    assert job["status"] == "COMPLETED", job["error_message"]
    scored = {
        (p["fast"], p["slow"]): score
        for p, score in query(stack, "SELECT parameters, score FROM trading_sweep_results WHERE job_id = %s", job_id)
    }
    assert len(scored) == 30

    def neighbourhood(fast: int, slow: int) -> list[float]:
        i, j = axes["fast"].index(fast), axes["slow"].index(slow)
        return [
            scored[(axes["fast"][a], axes["slow"][b])]
            for a in range(max(0, i - 1), min(6, i + 2))
            for b in range(max(0, j - 1), min(5, j + 2))
            if (a, b) != (i, j) and scored[(axes["fast"][a], axes["slow"][b])] is not None
        ]

    means = {cell: np.mean(neighbourhood(*cell)) for cell in scored}
    [strategy] = job["result"]["tickers"][0]["strategies"]
    best = strategy["best"]
    assert (best["parameters"]["fast"], best["parameters"]["slow"]) == max(means, key=lambda cell: means[cell])
    assert best["neighbourhood"]["mean"] == pytest.approx(max(means.values()))
    assert best["neighbourhood"]["worst"] == min(neighbourhood(best["parameters"]["fast"], best["parameters"]["slow"]))
    # Its metrics are those its chunk recorded.
    [(score,)] = query(
        stack,
        "SELECT score FROM trading_sweep_results WHERE job_id = %s AND parameters_key = %s",
        job_id,
        f"fast={best['parameters']['fast']},slow={best['parameters']['slow']}",
    )
    assert best["score"] == score


def test_a_large_sweep_is_shared_by_the_workers_and_survives_losing_one(
    sweeps: SweepPipeline, stack: Settings, tenant: str
) -> None:
    windows = {"start": 2, "stop": 120, "step": 1}
    body = {
        "tickers": ["SYN-A", "SYN-B"],
        "data_source": "synthetic",
        "start": "2010-01-01",
        "end": "2024-12-31",
        "strategies": [{"type": "sma_crossover", "parameters": {"fast": windows, "slow": windows}}],
    }
    expected = 2 * len(TradingSweepParameters.model_validate(body).strategies[0].combinations())
    job_id = submit_sweep(sweeps, tenant, body)

    # Once both workers are running chunks of the sweep, one of them dies without a goodbye.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [(done,)] = query(stack, "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", job_id)
        if len(chunk_workers(stack, job_id)) == 2:
            break
        time.sleep(0.05)
    assert len(chunk_workers(stack, job_id)) == 2, "both workers of the group run chunks of the one sweep"
    assert done < expected, "the sweep finished before a worker could be lost; make it larger"
    lost = sweeps.workers[1]
    pool = children_of(lost.process.pid)
    assert pool, "the worker runs its backtests in a process pool"
    os.kill(lost.process.pid, signal.SIGKILL)
    lost.process.wait()

    job = wait_until_done(sweeps, tenant, job_id, timeout=180)
    assert job["status"] == "COMPLETED", job["error_message"]
    [(rows, distinct)] = query(
        stack,
        """
        SELECT count(*), count(DISTINCT (ticker, strategy_type, parameters_key)) FROM trading_sweep_results
        WHERE job_id = %s""",
        job_id,
    )
    assert rows == distinct == expected == job["result"]["backtests"]
    assert not [pid for pid in pool if Path(f"/proc/{pid}").exists()], "the lost worker's pool died with it"


def test_a_sweep_whose_planner_died_before_queueing_every_chunk_still_completes(stack: Settings, tenant: str) -> None:
    # What a planner killed in the middle of queueing leaves (seen in CI: the last 16 of 142 chunks missing): the
    # request, its start, its plan and only the first chunks, nothing committed. A worker then takes the partition.
    body = json.loads(EXAMPLE.read_text()) | {"tickers": ["AAPL", "MSFT"]}
    sweep = TradingSweepParameters.model_validate(body)
    webhook = GenericJobWebhook(
        job_type=SWEEP_JOB_TYPE, parameters=TradingSweepWebhook.model_validate(body).job_parameters()
    )
    request = job_requested(webhook, tenant, None)
    started = follow_up(request, JobStarted, producer="test", payload=JobStartedPayload(attempt=1, host="gone"))
    data = fingerprints(market_data_config(stack), sweep)
    plans = plan_chunks(sweep, 100, {})
    planned = follow_up(
        started,
        SweepPlanned,
        producer="test",
        event_id=derived_event_id(request.job_id, "sweep-planned:1"),
        payload=SweepPlannedPayload(
            attempt=1,
            chunk_count=len(plans),
            backtest_count=sum(p.size for p in plans),
            data=data,
            parameters=sweep.model_dump(mode="json"),
        ),
    )
    queued = SweepPlanner._chunk_records(started, planned.event_id, sweep, data, plans, skip=set())[:2]
    assert len(plans) > 4

    with isolated_read_model(stack) as fresh:
        own = with_own_work_topics(fresh)

        async def die_while_queueing() -> None:
            producer = make_producer(own)
            await producer.start()
            try:
                for event in (request, started, planned):
                    key, value, headers = encode(event)
                    await producer.send_and_wait(own.job_events_topic, value=value, key=key, headers=headers)
                for key, value in queued:
                    await producer.send_and_wait(own.sweep_chunks_topic, value=value, key=key)
            finally:
                await producer.stop()

        asyncio.run(die_while_queueing())
        start = service_starter(own, pipeline_env(own, 0, {"ZIXLY_SWEEP_CHUNK_SIZE": "100"}))
        services = [start("worker-after-the-planner", ["worker"]), start("projector-after-the-planner", ["projector"])]
        try:
            deadline = time.monotonic() + 120
            while not finished_ids(own, [str(request.job_id)]) and time.monotonic() < deadline:
                time.sleep(0.2)
            outcome_sql = "SELECT status, (result->>'backtests')::int FROM pipeline_jobs WHERE id = %s"
            [(status, backtests)] = query(own, outcome_sql, request.job_id)
            assert status == "COMPLETED"
            [(rows, distinct)] = query(
                own,
                """
                SELECT count(*), count(DISTINCT (ticker, strategy_type, parameters_key)) FROM trading_sweep_results
                WHERE job_id = %s""",
                request.job_id,
            )
            assert rows == distinct == backtests == sum(p.size for p in plans)
            plans_sql = "SELECT count(*) FROM job_events WHERE job_id = %s AND event_type = 'SweepPlanned'"
            [(plans_in_log,)] = query(own, plans_sql, request.job_id)
            assert plans_in_log == 1, "the sweep is not planned again; its missing chunks are queued"
        finally:
            for service in services:
                service.stop()


def chunk_workers(settings: Settings, job_id: str) -> set[str]:
    rows = query(
        settings,
        """
        SELECT DISTINCT payload->>'worker' FROM job_events WHERE job_id = %s AND event_type = 'SweepResultsRecorded'
        """,
        job_id,
    )
    return {worker for (worker,) in rows}


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_a_sweep_dispatched_to_an_external_service_completes_from_its_callback(
    sweeps: SweepPipeline, stack: Settings, external: ExternalBacktests
) -> None:
    body = json.loads(EXAMPLE.read_text()) | {"execution": "external", "tickers": ["AAPL", "MSFT"]}
    sweep = TradingSweepParameters.model_validate(body)
    job_id = submit_sweep(sweeps, EXTERNAL_TENANT, body)

    job = wait_until_done(sweeps, EXTERNAL_TENANT, job_id)
    assert job["status"] == "COMPLETED", job["error_message"]
    assert job["metrics"]["external"]["reference"].startswith("ext-")
    [(rows,)] = query(stack, "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", job_id)
    assert rows == job["result"]["backtests"] == 2 * sweep.combination_count()
    types = [
        t for (t,) in query(stack, "SELECT event_type FROM job_events WHERE job_id = %s ORDER BY log_offset", job_id)
    ]
    assert types[:3] == ["JobRequested", "JobStarted", "SweepDispatched"]
    assert {"SweepCallbackReceived", "SweepResultsRecorded"} <= set(types)
    assert types[-1] == "JobCompleted"

    # The service calls back again (a retry of its own): the job is finished, so nothing changes.
    request = next(r for r in external.requests if str(r.job_id) == job_id)
    external.call_back(request, job["metrics"]["external"]["reference"])
    assert external.callback_statuses[-1] == 409
    [(after,)] = query(stack, "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", job_id)
    assert after == rows


def test_an_external_failure_fails_the_job_with_the_services_reason(
    sweeps: SweepPipeline, external: ExternalBacktests
) -> None:
    external.fail_with = "out of credits"
    try:
        body = json.loads(EXAMPLE.read_text()) | {"execution": "external"}
        job = wait_until_done(sweeps, EXTERNAL_TENANT, submit_sweep(sweeps, EXTERNAL_TENANT, body))
    finally:
        external.fail_with = None
    assert job["status"] == "FAILED"
    assert job["error_message"] == "out of credits"


def test_external_execution_for_a_tenant_without_a_service_fails_clearly(sweeps: SweepPipeline, tenant: str) -> None:
    body = json.loads(EXAMPLE.read_text()) | {"execution": "external"}
    job = wait_until_done(sweeps, tenant, submit_sweep(sweeps, tenant, body))
    assert job["status"] == "FAILED"
    assert f"no external backtest service is configured for tenant {tenant!r}" in job["error_message"]


def zixly(settings: Settings, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": settings.database, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "zixly", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def write_prices(path: Path, seed: int, *, bump_bar: int | None = None) -> None:
    rng = np.random.default_rng(seed)
    closes = 40 * np.exp(np.cumsum(rng.normal(0.0004, 0.02, 300)))
    if bump_bar is not None:
        closes[bump_bar] *= 1.01
    dates = np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-01-04") + 300)
    path.write_text("Date,Close\n" + "".join(f"{d},{c:.6f}\n" for d, c in zip(dates, closes, strict=True)))


def test_a_rerun_reproduces_a_sweep_bit_for_bit_and_names_the_prices_that_changed(
    sweeps: SweepPipeline, stack: Settings, tenant: str
) -> None:
    ticker = f"RR{uuid.uuid4().hex[:6].upper()}"
    prices = stack.market_data_folder / f"{ticker}.csv"
    prices.parent.mkdir(parents=True, exist_ok=True)
    write_prices(prices, seed=3)
    body = {
        "tickers": [ticker],
        "data_source": "files",
        "strategies": [
            {
                "type": "sma_crossover",
                "parameters": {"fast": [3, 5, 8, 13], "slow": [21, 34, 55]},
                "signal": "crossing",
            },
            {"type": "rsi_reversion", "parameters": {"window": [7, 14], "lower": [25, 30], "upper": [70, 75]}},
        ],
        "split": {"in_sample_fraction": 0.7, "top_n": 2},
    }
    original = submit_sweep(sweeps, tenant, body)
    assert wait_until_done(sweeps, tenant, original)["status"] == "COMPLETED"

    same = zixly(stack, "sweeps", "rerun", original)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "✓ reproduced" in same.stdout
    assert "all 20 result rows bit-identical" in same.stdout

    # One close moves by 1 %: the re-run says which input changed, and that the results moved with it.
    write_prices(prices, seed=3, bump_bar=100)  # in sample: the result table holds in-sample metrics
    later = time.time() + 10
    os.utime(prices, (later, later))  # a worker reads a file again when its modification time changes
    moved = zixly(stack, "sweeps", "rerun", original)
    assert moved.returncode == 2, moved.stdout + moved.stderr
    assert f"{ticker}'s prices: sha256" in moved.stdout
    assert "rows differ" in moved.stdout

    with psycopg.connect(stack.database) as connection:
        reruns = connection.execute(
            "SELECT count(*) FROM pipeline_jobs WHERE metadata->>'rerun_of' = %s AND tenant_id = %s",
            (original, tenant),
        ).fetchone()
        audited = connection.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'sweep.rerun' AND target = %s", (original,)
        ).fetchone()
    assert reruns == (2,)
    assert audited == (2,)


def test_a_rerun_of_a_job_that_is_not_a_completed_sweep_is_refused(stack: Settings) -> None:
    missing = zixly(stack, "sweeps", "rerun", str(uuid.uuid4()))
    assert missing.returncode == 3
    assert "no job" in missing.stdout
    assert zixly(stack, "sweeps", "rerun", "not-a-uuid").returncode == 2  # typer's usage error
