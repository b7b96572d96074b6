"""The dashboard's side of ``zixly bench job-list``: page callbacks and commit-to-screen, in a real browser.

The dashboard runs as ``zixly dashboard`` (its own process) over the seeded million jobs. Headless Chromium opens
the jobs page once; the jobs grid's callback request it sends is then replayed with each scenario's filters, so that
a round is exactly what a filter change costs (Dash, the query, Postgres, the JSON of 50 rows). The same scenarios'
API numbers, from the table above, are the baseline. Commit-to-screen: a row shown in the grid changes in a
committed transaction that notifies, as a projector batch does, and the browser marks when the new value is in the
grid's DOM, at the next animation frame.
"""

import asyncio
import copy
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from playwright.async_api import BrowserContext, async_playwright

from dashboard.page_data import PageData
from dashboard.pages.overview import RANGES
from kernel.database import EVERY_TENANT
from kernel.listening import read_ready_file
from kernel.settings import Settings
from zixly.bench.logins import bench_admin, log_in, log_in_browser
from zixly.stack.processes import spawn, terminate
from zixly.supervisor import http_ok

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; no browser is downloaded
# What a container without a display or a GPU needs; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]

# The API's query parameters and the jobs page's filter inputs that take the same values.
_PAGE_INPUTS = {
    "job_type": "jobs-type",
    "tenant_id": "jobs-tenant",
    "created_from": "jobs-from",
    "created_to": "jobs-to",
    "q": "jobs-q",
}

# Detects a value arriving in a grid cell: a MutationObserver, then the next frame (when it is painted).
_WATCH_CELL = """
([rowId, column, expected]) => new Promise(resolve => {
  const grid = document.getElementById("jobs-grid");
  const seen = () => {
    const cell = grid.querySelector(`.ag-center-cols-container [row-id="${rowId}"] [col-id="${column}"]`);
    return cell && cell.textContent === expected;
  };
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); requestAnimationFrame(() => resolve(Date.now())); }
  });
  observer.observe(grid, {subtree: true, childList: true, characterData: true});
  window.__watching = true;
})
"""


@dataclass(frozen=True)
class PageTimings:
    callbacks: dict[str, list[float]]  # scenario: milliseconds per round
    overview_ms: dict[str, tuple[list[float], list[float]]]  # range: (from the rollups, exact from pipeline_jobs)
    commit_to_screen_ms: list[float]


@asynccontextmanager
async def dashboard(bench: Settings) -> AsyncIterator[str]:
    """A dashboard of the bench's read model, on a port the system picks; yields its URL once it answers."""
    log_path = bench.home / "logs" / "bench-dashboard.log"
    ready_file = log_path.with_suffix(".ready")
    ready_file.unlink(missing_ok=True)
    env = os.environ | {
        "DATABASE_URL": bench.database,
        "ZIXLY_DASHBOARD_PORT": "0",
        "ZIXLY_DASHBOARD_METRICS_PORT": "0",
        "ZIXLY_READY_FILE": str(ready_file),
    }
    process = spawn([sys.executable, "-m", "zixly", "dashboard"], log_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (
            (port := read_ready_file(ready_file).get("dashboard")) and http_ok(f"http://127.0.0.1:{port}/api/health")
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start: {log_path.read_text()[-2000:]}")
            await asyncio.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(process.pid, timeout=10)


def page_inputs(params: dict[str, Any]) -> dict[str, Any]:
    """The jobs page's filter inputs for a scenario of the API (``GET /api/pipelines/jobs`` parameters)."""
    inputs = {component: params[name] for name, component in _PAGE_INPUTS.items() if name in params}
    inputs["jobs-status"] = [params["status"]] if "status" in params else []
    inputs["jobs-sort"] = f"{params.get('sort', 'created_at')} {params.get('order', 'desc')}"
    return inputs


def _with_filters(request: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(request)
    for item in body["inputs"]:
        if item["id"].startswith("jobs-") and item["property"] == "value":
            item["value"] = inputs.get(item["id"])
    body["changedPropIds"] = ["jobs-q.value"]
    return body


async def _grid_request(browser: BrowserContext, url: str) -> dict[str, Any]:
    page = await browser.new_page()
    async with page.expect_request(
        lambda r: "_dash-update-component" in r.url and "jobs-grid" in (r.post_data or "")
    ) as captured:
        await page.goto(f"{url}/jobs")
    request = await captured.value
    await page.close()
    body: dict[str, Any] = json.loads(request.post_data or "{}")
    return body


async def _callbacks(
    url: str,
    request: dict[str, Any],
    scenarios: dict[str, tuple[dict[str, Any], int]],
    rounds: int,
    login: tuple[str, str],
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        client.headers.update(await log_in(client, *login))
        for name, (params, api_rows) in scenarios.items():
            body = _with_filters(request, page_inputs(params))
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.post("/_dash-update-component", json=body)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            rows = response.json()["response"]["jobs-grid"]["rowData"]
            if len(rows) != api_rows:
                raise RuntimeError(f"the page shows {len(rows)} jobs for {name!r}, the API {api_rows}")
            timings[name] = times
    return timings


async def _commit_to_screen(browser: BrowserContext, url: str, bench: Settings, rounds: int) -> list[float]:
    page = await browser.new_page()
    await page.goto(f"{url}/jobs")
    await page.wait_for_function("document.getElementById('live-status')?.textContent === '● live'")
    first = page.locator("#jobs-grid .ag-center-cols-container .ag-row").first
    await first.wait_for()
    job_id = uuid.UUID(await first.get_attribute("row-id") or "")
    times = []
    async with await psycopg.AsyncConnection.connect(bench.database, autocommit=True) as connection:
        before = await (
            await connection.execute("SELECT progress_message FROM pipeline_jobs WHERE id = %s", (job_id,))
        ).fetchone()
        try:
            for round_ in range(rounds):
                token = f"bench {round_} {uuid.uuid4().hex[:6]}"
                seen = asyncio.ensure_future(page.evaluate(_WATCH_CELL, [str(job_id), "progress_message", token]))
                await page.wait_for_function("window.__watching === true")
                await page.evaluate("window.__watching = false")
                async with connection.transaction():
                    await connection.execute(
                        "UPDATE pipeline_jobs SET progress_message = %s, updated_at = now() WHERE id = %s",
                        (token, job_id),
                    )
                    await connection.execute("SELECT pg_notify('zixly_job_changes', %s)", (str(job_id),))
                committed_ms = time.time() * 1000
                shown_ms = await asyncio.wait_for(seen, 10)
                times.append(float(shown_ms) - committed_ms)
        finally:
            await connection.execute(
                "UPDATE pipeline_jobs SET progress_message = %s WHERE id = %s", (before[0] if before else None, job_id)
            )
    await page.close()
    return times


def _overview(bench: Settings, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """The overview's aggregates per time range, computed afresh each round (no shared cache): from the hourly
    rollups, as the page does, and exactly from ``pipeline_jobs`` (the baseline)."""
    data = PageData(bench, shared_seconds=0)
    try:
        timings: dict[str, tuple[list[float], list[float]]] = {}
        for name, (length, bucket) in RANGES.items():
            if name == "1h":  # counted exactly on the page already
                continue
            both: list[list[float]] = [[], []]
            for _ in range(rounds):
                for times, rollups in zip(both, (True, False), strict=True):
                    until = datetime.now(UTC)
                    started = time.perf_counter()
                    data.overview(EVERY_TENANT, until - length, until, bucket, rollups=rollups)
                    times.append((time.perf_counter() - started) * 1000)
            timings[name] = (both[0], both[1])
        return timings
    finally:
        data.dispose()


async def _measure(bench: Settings, scenarios: dict[str, tuple[dict[str, Any], int]], rounds: int) -> PageTimings:
    login = bench_admin(bench)
    async with dashboard(bench) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await log_in_browser(context, url, *login)
            request = await _grid_request(context, url)
            callbacks = await _callbacks(url, request, scenarios, rounds, login)
            screen = await _commit_to_screen(context, url, bench, rounds)
        finally:
            await browser.close()
    return PageTimings(callbacks, await asyncio.to_thread(_overview, bench, max(5, rounds // 5)), screen)


def measure_pages(bench: Settings, scenarios: dict[str, tuple[dict[str, Any], int]], rounds: int) -> PageTimings:
    """``scenarios``: name → (the API's query parameters, how many jobs the API answered), the page's baseline."""
    if not CHROMIUM.exists():
        raise RuntimeError("Debian's chromium is needed for the page measurements (make bench-job-list installs it)")
    return asyncio.run(_measure(bench, scenarios, rounds))
