"""The read-only API on the golden read model: pages and their edges, one job, a sweep's results as JSON and CSV,
service metrics, bad parameters (clear 4xx, never 5xx), and job changes pushed to a subscriber after the commit."""

import asyncio
import csv
import io
import json
import math
import random
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import scipy.stats

from dashboard import figures
from dashboard.api import create_api
from dashboard.page_data import PageData
from kernel.database import EVERY_TENANT
from kernel.kafka import make_producer
from kernel.settings import Settings
from schemas.codec import encode
from schemas.events import JobRequested, JobRequestedPayload
from tests.identities import bearer, create_tenant, create_token
from tests.integration.conftest import DASHBOARD_READY, start_service
from tests.integration.isolated import project_live

SWEEP_JOB = "00000000-0000-4000-8000-000000000019"
GOLDEN_JOBS = 6


async def all_pages(api: httpx.AsyncClient, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        response = await api.get("/api/pipelines/jobs", params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize("limit", [1, 4, 5, 6, 200])
async def test_pages_cover_every_job_once_in_order_whatever_the_page_size(api: httpx.AsyncClient, limit: int) -> None:
    pages = await all_pages(api, limit=limit)
    jobs = [job for page in pages for job in page]
    assert len(jobs) == GOLDEN_JOBS
    assert len({job["id"] for job in jobs}) == GOLDEN_JOBS
    assert [j["created_at"] for j in jobs] == sorted((j["created_at"] for j in jobs), reverse=True)
    assert len(pages) == -(-GOLDEN_JOBS // limit)
    assert all(pages), "no empty last page"


async def test_pages_sort_ascending_by_the_update_time_too(api: httpx.AsyncClient) -> None:
    jobs = [job for page in await all_pages(api, limit=2, sort="updated_at", order="asc") for job in page]
    assert [j["updated_at"] for j in jobs] == sorted(j["updated_at"] for j in jobs)


async def test_filters_by_status_type_tenant_time_and_text(api: httpx.AsyncClient) -> None:
    async def ids(**params: Any) -> set[str]:
        body = (await api.get("/api/pipelines/jobs", params=params | {"with_total": True})).json()
        assert body["total"] == len(body["items"])
        return {job["id"] for job in body["items"]}

    assert await ids(status=["COMPLETED"]) == await ids(status="COMPLETED")
    assert len(await ids(status=["COMPLETED", "FAILED"])) == len(await ids(status="COMPLETED")) + 1
    assert await ids(job_type="trading.sweep", tenant_id="acme") == {SWEEP_JOB}
    assert await ids(q="404 not found") == {"00000000-0000-4000-8000-000000000008"}
    assert await ids(q="100%") == set()
    assert len(await ids(created_to="2026-03-01T09:00:02Z")) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"sort": "tenant_id"}, "sort"),
        ({"created_from": "2026-03-02T00:00:00Z", "created_to": "2026-03-01T00:00:00Z"}, "created_to"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "0.5"}, "created_to"),  # not read as seconds since 1970: the API speaks ISO 8601
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(api: httpx.AsyncClient, params: dict[str, Any], field: str) -> None:
    response = await api.get("/api/pipelines/jobs", params=params)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


async def test_a_cursor_of_one_sort_is_refused_for_another(api: httpx.AsyncClient) -> None:
    cursor = (await api.get("/api/pipelines/jobs", params={"limit": 1})).json()["next_cursor"]
    response = await api.get("/api/pipelines/jobs", params={"limit": 1, "sort": "updated_at", "cursor": cursor})
    assert response.status_code == 422


async def test_one_job_comes_with_its_timeline_and_an_unknown_one_is_404(api: httpx.AsyncClient) -> None:
    job = (await api.get(f"/api/pipelines/jobs/{SWEEP_JOB}")).json()
    assert job["status"] == "COMPLETED"
    assert [e["event_type"] for e in job["events"]][:3] == ["JobRequested", "JobStarted", "SweepPlanned"]
    assert (await api.get(f"/api/pipelines/jobs/{uuid.uuid4()}")).status_code == 404
    assert (await api.get("/api/pipelines/jobs/not-a-uuid")).status_code == 422


async def test_a_sweeps_results_come_best_first_as_json_pages_and_as_one_csv(api: httpx.AsyncClient) -> None:
    first = (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"limit": 3})).json()
    assert first["total"] == 4
    scores = [row["score"] for row in first["items"]]
    assert scores == sorted(scores, reverse=True)
    rest = (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"limit": 3, "offset": 3})).json()
    assert len(rest["items"]) == 1

    download = await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"format": "csv"})
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["parameters_key"] for row in rows] == [row["parameters_key"] for row in first["items"] + rest["items"]]
    assert (await api.get(f"/api/pipelines/results/{uuid.uuid4()}")).status_code == 404
    assert (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"format": "xml"})).status_code == 422
    # A sweep without a walk-forward ranks once, as fold 0; each row says which fold ranked it.
    assert {row["fold"] for row in rows} == {"0"}
    assert (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"fold": 0})).json()["total"] == 4
    assert (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"fold": 1})).json()["total"] == 0
    one_fold = await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"fold": 1, "format": "csv"})
    assert one_fold.text.strip().splitlines()[1:] == []
    assert (await api.get(f"/api/pipelines/results/{SWEEP_JOB}", params={"fold": -1})).status_code == 422


async def test_service_metrics_count_jobs_by_type_with_success_rates(api: httpx.AsyncClient) -> None:
    window = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"}
    metrics = (await api.get("/api/service-metrics", params=window)).json()
    by_type = {row["job_type"]: row for row in metrics["job_types"]}
    assert by_type["trading.sweep"]["completed"] == 2
    assert by_type["http.callback"]["success_rate"] == 0.0
    backwards = {"since": window["until"], "until": window["since"]}
    assert (await api.get("/api/service-metrics", params=backwards)).status_code == 422
    century = await api.get("/api/service-metrics", params={"since": "1926-01-01T00:00:00Z"})
    assert century.status_code == 422
    assert "at most 31 days" in century.text


def test_a_subscriber_is_pushed_its_tenants_new_job_right_after_the_projector_commit_and_nothing_of_others(
    golden: Settings,
) -> None:
    env = {
        "DATABASE_URL": golden.database,
        "ZIXLY_JOB_EVENTS_TOPIC": golden.job_events_topic,
        "ZIXLY_DASHBOARD_PORT": "0",
    }
    server = start_service(golden, "dashboard-api", ["dashboard"], DASHBOARD_READY, env)
    port = server.port
    tenant, other = (create_tenant(golden, f"{name}-{uuid.uuid4().hex[:6]}").id for name in ("watcher", "other"))
    token = create_token(golden, tenant)
    try:
        with httpx.stream(
            "GET", f"http://127.0.0.1:{port}/api/jobs/subscribe", headers=bearer(token), timeout=30
        ) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": subscribed"
            append_request(golden, other)  # committed first: a leaky filter would push it first
            asyncio.run(project_live(golden))
            job_id = append_request(golden, tenant)
            asyncio.run(project_live(golden))
            committed = time.monotonic()
            # Heartbeats come every 15 s: a stream that never pushes fails here, within a bounded time.
            data = next(line for line in lines if line.startswith("data: ") or time.monotonic() - committed > 20)
            seen = time.monotonic()
        change = json.loads(data.removeprefix("data: "))
        assert (change["id"], change["status"], change["tenant_id"]) == (job_id, "QUEUED", tenant)
        # A generous bound on a shared machine; the latency itself is measured by `zixly bench job-list`.
        assert seen - committed < 5.0
    finally:
        server.stop()


def append_request(settings: Settings, tenant: str) -> str:
    event = JobRequested(
        tenant_id=tenant,
        job_id=uuid.uuid4(),
        correlation_id="watch",
        producer="test",
        payload=JobRequestedPayload(job_type="noop", parameters={}),
    )

    async def send() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            key, value, headers = encode(event)
            await producer.send_and_wait(settings.job_events_topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

    asyncio.run(send())
    return str(event.job_id)


async def test_health_is_ok_while_postgres_answers_and_a_503_with_the_reason_when_it_does_not(
    api: httpx.AsyncClient, golden: Settings
) -> None:
    assert (await api.get("/api/health")).json() == {"status": "ok"}

    unreachable = create_api(golden.replaced(database_url="postgresql://zixly:zixly@127.0.0.1:9/zixly"))
    async with (
        unreachable.router.lifespan_context(unreachable),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=unreachable), base_url="http://api") as client,
    ):
        response = await client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("postgres: ")


async def test_a_long_timeline_comes_as_its_two_ends_with_each_types_count_and_every_event_pages_in_order(
    api: httpx.AsyncClient,
) -> None:
    whole = (await api.get(f"/api/pipelines/jobs/{SWEEP_JOB}", params={"events_edge": 10_000})).json()
    ends = (await api.get(f"/api/pipelines/jobs/{SWEEP_JOB}", params={"events_edge": 1})).json()
    total = len(whole["events"])
    assert total > 2
    assert (whole["events_total"], whole["events_omitted"]) == (total, 0)
    assert [e["event_id"] for e in ends["events"]] == [whole["events"][0]["event_id"], whole["events"][-1]["event_id"]]
    assert (ends["events_total"], ends["events_omitted"]) == (total, total - 2)
    assert sum(kind["count"] for kind in ends["event_types"]) == total
    assert [kind["event_type"] for kind in ends["event_types"]] == list(
        dict.fromkeys(e["event_type"] for e in whole["events"])
    )

    paged: list[dict[str, Any]] = []
    after: int | None = -1
    while after is not None:
        page = (
            await api.get(f"/api/pipelines/jobs/{SWEEP_JOB}/events", params={"after_offset": after, "limit": 2})
        ).json()
        assert len(page["items"]) <= 2
        paged += page["items"]
        after = page["next_after_offset"]
    assert [e["event_id"] for e in paged] == [e["event_id"] for e in whole["events"]]
    assert (await api.get(f"/api/pipelines/jobs/{uuid.uuid4()}/events")).status_code == 404
    assert (await api.get(f"/api/pipelines/jobs/{SWEEP_JOB}", params={"events_edge": 0})).status_code == 422


def test_the_heatmap_reduced_in_postgres_equals_the_one_drawn_from_every_backtest(golden: Settings) -> None:
    job_id = uuid.uuid4()
    rows = []
    for index in range(600):
        fast, slow, window = index % 7, (index // 7) % 9, index // 63
        score = None if index % 13 == 0 else ((index * 7919) % 1000) / 100 - 5 + index / 1e6  # no ties
        parameters = {"fast": fast, "slow": slow, "window": window}
        key = ",".join(f"{name}={value}" for name, value in sorted(parameters.items()))
        rows.append(
            (
                job_id,
                "acme",
                "AAPL",
                "sma_crossover",
                key,
                json.dumps(parameters),
                score,
                score,
                3,
                0.5,
                0,
                uuid.uuid4(),
            )
        )
    insert_results(golden, rows)
    data = PageData(golden)
    try:
        every = data.sweep_cells(EVERY_TENANT, job_id, "AAPL", "sma_crossover")
        for x, y, metric in (("fast", "slow", "score"), ("slow", "window", "sharpe"), ("window", "fast", "score")):
            best = data.sweep_best_by_point(EVERY_TENANT, job_id, "AAPL", "sma_crossover", x, y, metric)
            reduced, drawn = figures.sweep_heatmap(best, x, y, metric), figures.sweep_heatmap(every, x, y, metric)
            assert len(best) < len(every)
            for attribute in ("x", "y", "z", "customdata"):
                assert _lists(reduced.data[0][attribute]) == _lists(drawn.data[0][attribute]), (x, y, attribute)
        assert [
            row["parameters_key"] for row in data.sweep_cells(EVERY_TENANT, job_id, "AAPL", "sma_crossover", limit=5)
        ] == [c["parameters_key"] for c in every[:5]]
        assert data.sweep_cell_count(EVERY_TENANT, job_id, "AAPL", "sma_crossover") == 600

        # Axes with more values than bins: each bin holds the best of the backtests in its range, named by its edge.
        binned = data.sweep_best_by_point(
            EVERY_TENANT, job_id, "AAPL", "sma_crossover", "fast", "slow", "score", bins=3
        )
        expected: dict[tuple[float, float], float] = {}
        for cell in every:
            if cell["score"] is not None:
                edge = (
                    2 * min(cell["parameters"]["fast"] // 2, 2),
                    8 / 3 * min(cell["parameters"]["slow"] * 3 // 8, 2),
                )
                expected[edge] = max(expected.get(edge, -math.inf), cell["score"])
        found = {(c["parameters"]["fast"], c["parameters"]["slow"]): c["score"] for c in binned}
        assert found.keys() == {(x, round(y, 6)) for x, y in expected}
        assert sorted(found.values()) == sorted(expected.values())
        with pytest.raises(ValueError, match="not a metric"):
            data.sweep_best_by_point(EVERY_TENANT, job_id, "AAPL", "sma_crossover", "fast", "slow", "trades; --")
    finally:
        data.dispose()


def insert_results(settings: Settings, rows: list[tuple[Any, ...]]) -> None:
    """Result rows straight into the table: (job, tenant, ticker, strategy, parameters key, parameters, score,
    sharpe, trades, exposure, chunk, event id)."""
    with psycopg.connect(settings.database, autocommit=True) as connection:
        connection.cursor().executemany(
            "INSERT INTO trading_sweep_results (job_id, tenant_id, ticker, strategy_type, parameters_key, parameters, "
            "score, sharpe, trades, exposure, chunk_index, event_id, recorded_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            rows,
        )


def _lists(value: Any) -> Any:
    return [_lists(item) for item in value] if isinstance(value, list | tuple) else value


def test_two_sweeps_rank_correlation_is_spearmans_over_their_common_cells_ties_included(golden: Settings) -> None:
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rng = random.Random(11)
    sharpe: dict[uuid.UUID, dict[str, float | None]] = {first: {}, second: {}}
    rows = []
    for job_id, cells in ((first, range(0, 90)), (second, range(10, 100))):
        for index in cells:
            key = f"fast={index % 10},slow={index // 10}"
            value = None if index % 17 == 0 else round(rng.gauss(0, 1), 1)  # rounded: many ties
            sharpe[job_id][key] = value
            rows.append(
                (job_id, "acme", "AAPL", "sma_crossover", key, json.dumps({}), value, value, 1, 0.5, 0, uuid.uuid4())
            )
    insert_results(golden, rows)
    common = [key for key in sharpe[first] if sharpe[second].get(key) is not None and sharpe[first][key] is not None]
    expected = scipy.stats.spearmanr([sharpe[first][k] for k in common], [sharpe[second][k] for k in common])
    data = PageData(golden)
    try:
        found = data.sweep_rank_correlation(EVERY_TENANT, first, second, "AAPL", "sma_crossover", "sharpe")
        assert found.cells == len(common) == 75
        assert found.spearman == pytest.approx(expected.statistic, abs=1e-12)
        nothing = data.sweep_rank_correlation(EVERY_TENANT, first, third, "AAPL", "sma_crossover", "sharpe")
        assert (nothing.cells, nothing.spearman) == (0, None)
        with pytest.raises(ValueError, match="not a metric"):
            data.sweep_rank_correlation(EVERY_TENANT, first, second, "AAPL", "sma_crossover", "sharpe) --")
    finally:
        data.dispose()
