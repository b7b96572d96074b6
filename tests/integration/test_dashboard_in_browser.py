"""The operators' dashboard in a real browser (Debian's Chromium, headless) against the running pipeline: receiver,
worker, projector and the dashboard's server as processes, Kafka and Postgres underneath.

Every page is saved as a screenshot under ``$ZIXLY_HOME/screenshots`` (a few are copied into ``docs/``).
"""

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright, expect

from identity.tenants import TenantLimits
from kernel.settings import Settings
from schemas.access import Role
from tests.identities import PASSWORD, create_tenant, create_token, create_user, set_limits
from tests.integration.conftest import DASHBOARD_READY, RunningPipeline, Service, start_service
from zixly.bench.dashboard_pages import CHROMIUM, CHROMIUM_ARGS

# Stands in for the browser's notification service, which a headless browser does not have: it records instead.
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class {
  constructor(title, options) { window.__notifications.push({title, body: (options || {}).body}); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""

TIME_SHOWN = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is installed by `make test`")


@pytest.fixture(scope="module")
def dashboard(stack: Settings, pipeline: RunningPipeline) -> Iterator[Service]:
    server = start_service(stack, "dashboard", ["dashboard"], DASHBOARD_READY, {"ZIXLY_DASHBOARD_PORT": "0"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        yield await _launch(playwright)


async def _launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    await context.add_init_script(RECORD_NOTIFICATIONS)
    yield context
    await context.close()


class Screen:
    """A browser tab on the dashboard that fails the test on any script error or failed page callback."""

    def __init__(self, page: Page, base_url: str, shots: Path) -> None:
        self.page, self.base_url, self._shots = page, base_url, shots
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error.stack}"))
        page.on(
            "response",
            lambda response: (
                self.problems.append(f"{response.status} from {response.url}") if response.status >= 500 else None
            ),
        )

    async def open(self, path: str) -> None:
        await self.page.goto(self.base_url + path)

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=self._shots / f"{name}.png", full_page=True)

    def row(self, job_id: str) -> Any:
        return self.page.locator(f'#jobs-grid .ag-center-cols-container .ag-row[row-id="{job_id}"]')

    def rows(self) -> Any:
        return self.page.locator("#jobs-grid .ag-center-cols-container .ag-row")


@pytest.fixture(scope="module")
def platform_admin(stack: Settings) -> str:
    return create_user(stack, f"admin-{uuid.uuid4().hex[:8]}@zixly.test", Role.PLATFORM_ADMIN, None)


async def log_in(screen: Screen, email: str, password: str = PASSWORD) -> None:
    await screen.open("/login")
    await screen.page.fill("#email", email)
    await screen.page.fill("#password", password)
    await screen.page.click("#login-submit")


@pytest.fixture
async def screen(
    context: BrowserContext, dashboard: Service, stack: Settings, platform_admin: str
) -> AsyncIterator[Screen]:
    """A tab logged in as a platform admin, through the login page."""
    shots = stack.home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    screen = Screen(await context.new_page(), dashboard.url.removesuffix("/api/health"), shots)
    await log_in(screen, platform_admin)
    await expect(screen.page.locator("#role-badge")).to_have_text("platform-admin · all tenants")
    yield screen
    assert screen.problems == [], screen.problems


@pytest.fixture
def tenant() -> str:
    return f"ui-{uuid.uuid4().hex[:10]}"


def submit(pipeline: RunningPipeline, tenant: str, body: dict[str, Any], kind: str = "generic-job") -> str:
    response = httpx.post(f"{pipeline.receiver_url}/webhook/{kind}", json=body, headers={"X-Tenant-ID": tenant})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def wait_for(pipeline: RunningPipeline, tenant: str, job_id: str, statuses: set[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{pipeline.receiver_url}/webhook/jobs/{job_id}", headers={"X-Tenant-ID": tenant})
        if response.status_code == 200 and response.json()["status"] in statuses:
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {statuses}")


async def test_the_jobs_page_filters_from_its_url_and_from_its_form(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    done = [submit(pipeline, tenant, {"job_type": "noop"}) for _ in range(3)]
    failed = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 0, "fail": True}})
    for job_id in done:
        wait_for(pipeline, tenant, job_id, {"COMPLETED"})
    wait_for(pipeline, tenant, failed, {"FAILED"})

    await screen.open(f"/jobs?tenant_id={tenant}")
    await expect(screen.rows()).to_have_count(4)
    await screen.screenshot("jobs")

    await screen.open(f"/jobs?tenant_id={tenant}&status=COMPLETED")
    await expect(screen.rows()).to_have_count(3)
    await expect(screen.row(failed)).to_have_count(0)

    await screen.open("/jobs")
    await screen.page.fill("#jobs-tenant", tenant)
    await screen.page.press("#jobs-tenant", "Enter")
    await expect(screen.rows()).to_have_count(4)
    await screen.page.fill("#jobs-q", "asked to fail")
    await screen.page.press("#jobs-q", "Enter")
    await expect(screen.rows()).to_have_count(1)
    await expect(screen.row(failed)).to_have_count(1)
    # The view is in the address: opening it again shows the same rows.
    shared = screen.page.url
    assert f"tenant_id={tenant}" in shared
    assert "q=asked+to+fail" in shared
    await screen.page.goto(shared)
    await expect(screen.rows()).to_have_count(1)


async def test_pages_of_jobs_go_older_and_back_newer(screen: Screen, pipeline: RunningPipeline, tenant: str) -> None:
    ids = [submit(pipeline, tenant, {"job_type": "noop"}) for _ in range(55)]
    wait_for(pipeline, tenant, ids[-1], {"COMPLETED"})
    await screen.open(f"/jobs?tenant_id={tenant}")
    await expect(screen.rows()).to_have_count(50)
    await screen.page.click("#jobs-older")
    await expect(screen.rows()).to_have_count(5)
    await expect(screen.page.locator("#jobs-page-info")).to_contain_text("page 2")
    await expect(screen.page.locator("#jobs-older")).to_be_disabled()
    await screen.page.click("#jobs-newer")
    await expect(screen.rows()).to_have_count(50)
    await expect(screen.page.locator("#jobs-newer")).to_be_disabled()


async def test_a_job_opens_with_its_timeline_errors_and_time_travel(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    job_id = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 0, "fail": True}})
    wait_for(pipeline, tenant, job_id, {"FAILED"})
    await screen.open(f"/jobs?tenant_id={tenant}")
    await screen.page.locator(f'#jobs-grid .ag-row[row-id="{job_id}"] a').click()
    await expect(screen.page).to_have_url(f"{screen.base_url}/jobs/{job_id}")
    await expect(screen.page.locator("#job-status")).to_have_text("FAILED")
    await expect(screen.page.locator("#job-error")).to_contain_text("Errors")
    await expect(screen.page.locator("#job-timeline .main-svg").first).to_be_visible()
    await expect(screen.page.locator("#job-as-of-label")).to_contain_text("JobFailed")
    await screen.screenshot("job-detail")

    await screen.page.locator("#job-as-of [role=slider]").press("Home")
    await expect(screen.page.locator("#job-as-of-label")).to_contain_text("after event 1 of")
    await expect(screen.page.locator("#job-as-of-label")).to_contain_text("JobRequested")
    await expect(screen.page.locator("#job-as-of-state")).to_contain_text('"status": "QUEUED"')


async def test_a_posted_job_appears_and_completes_on_screen_without_a_reload(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    await screen.open(f"/jobs?tenant_id={tenant}")
    await expect(screen.page.locator("#live-status")).to_have_text("● live")
    await screen.page.evaluate("window.__sameDocument = true")

    job_id = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 2}})
    await expect(screen.row(job_id)).to_have_count(1, timeout=15_000)
    await expect(screen.row(job_id).locator('[col-id="status"]')).to_have_text("COMPLETED", timeout=30_000)
    # A pushed row is shaped like a fetched one.
    await expect(screen.row(job_id).locator('[col-id="created_at"]')).to_have_text(re.compile(TIME_SHOWN))
    assert await screen.page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    # The job's own page follows it live too.
    slow = submit(pipeline, tenant, {"job_type": "sleep", "parameters": {"seconds": 3}})
    await screen.open(f"/jobs/{slow}")
    await expect(screen.page.locator("#live-status")).to_have_text("● live")
    await screen.page.evaluate("window.__sameDocument = true")
    await expect(screen.page.locator("#job-status")).to_have_text("COMPLETED", timeout=30_000)
    assert await screen.page.evaluate("window.__sameDocument === true"), "the page was reloaded"


async def test_opted_in_notifications_announce_finished_jobs(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    await screen.open("/jobs")
    await screen.page.click("#notify-toggle")
    await expect(screen.page.locator("#notify-toggle")).to_have_text("Notifications on ✓")
    job_id = submit(pipeline, tenant, {"job_type": "noop"})
    await screen.page.wait_for_function(
        "id => window.__notifications.some(n => n.body.includes(id.slice(0, 8)))", arg=job_id, timeout=30_000
    )
    notes = await screen.page.evaluate("window.__notifications")
    assert {"title": "Job completed", "body": f"noop {job_id[:8]} ({tenant})"} in notes


SWEEP = {
    "tickers": ["AAPL", "MSFT"],
    "strategies": [
        {
            "type": "sma_crossover",
            "parameters": {"fast": {"start": 2, "stop": 10, "step": 1}, "slow": {"start": 12, "stop": 30, "step": 2}},
        }
    ],
    "data_source": "bundled",
    "rank_by": "sharpe",
    "split": {"in_sample_fraction": 0.7, "top_n": 2},
}


async def test_a_sweeps_heatmap_ranking_equity_curve_and_out_of_sample_comparison(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    job_id = submit(pipeline, tenant, SWEEP, kind="trading-sweep")
    await screen.open(f"/sweeps?job={job_id}")
    wait_for(pipeline, tenant, job_id, {"COMPLETED"}, timeout=120)
    await expect(screen.page.locator("#sweep-progress")).to_contain_text("COMPLETED", timeout=15_000)
    await expect(screen.page.locator("#sweep-progress")).to_contain_text("90 backtests of AAPL sma_crossover")
    await expect(screen.page.locator("#sweep-heatmap .heatmaplayer")).to_have_count(1)
    await expect(screen.page.locator("#sweep-ranking .ag-center-cols-container .ag-row").first).to_be_visible()
    await expect(screen.page.locator("#sweep-oos .barlayer .trace")).to_have_count(2)

    await screen.page.click("#sweep-equity-cell")
    await screen.page.get_by_role("option").first.click()  # the options open in a layer of their own
    # The best cell's curve and buying and holding the same ticker.
    await expect(screen.page.locator("#sweep-equity .scatterlayer .trace")).to_have_count(2)
    await screen.screenshot("sweep-explorer")


# The worked example of docs/sweeps.md, whose figures the page must show.
WALK_FORWARD = json.loads((Path(__file__).resolve().parents[2] / "examples" / "walk-forward.json").read_text())


async def test_a_walk_forwards_folds_show_on_a_timeline_with_the_stitched_curve_against_buy_and_hold(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    job_id = submit(pipeline, tenant, WALK_FORWARD, kind="trading-sweep")
    await screen.open(f"/sweeps?job={job_id}")
    wait_for(pipeline, tenant, job_id, {"COMPLETED"}, timeout=120)
    page = screen.page
    rows = page.locator("#sweep-folds-table .fold-row")
    await expect(rows).to_have_count(5, timeout=15_000)
    # Fold 0 trained on the first 1,000 business days (2015-01-01 to 2018-10-31) and was tested on the next 300.
    await expect(rows.first).to_contain_text("2015-01-01 → 2018-10-31")
    await expect(rows.first).to_contain_text("2018-11-01 → 2019-12-25")
    await expect(rows.first).to_contain_text("fast=5,slow=20")
    await expect(rows.nth(4)).to_contain_text("fast=20,slow=140")
    # Training and test windows, and the chosen parameters written beside each test window.
    await expect(page.locator("#sweep-folds .scatterlayer .trace")).to_have_count(3)
    await expect(page.locator("#sweep-folds .scatterlayer .textpoint")).to_have_count(5)
    await expect(page.locator("#sweep-walk-forward-equity .scatterlayer .trace")).to_have_count(2)
    summary = page.locator("#sweep-walk-forward-summary")
    await expect(summary).to_contain_text("5 folds, stitched out of sample: total return -3.2% (buy and hold -58.8%)")
    await expect(summary).to_contain_text("changed 3 time(s) in 4 step(s)")

    # The heatmap shows the latest fold's training ranking, and any other fold's on asking.
    await expect(page.locator("#sweep-progress")).to_contain_text("90 backtests of WALK sma_crossover")
    await expect(page.locator("#sweep-fold")).to_contain_text("fold 4: trained 2019-08-08")
    await page.click("#sweep-fold")
    await page.get_by_role("option", name=re.compile("^fold 0:")).click()
    await expect(page.locator("#sweep-fold")).to_contain_text("fold 0: trained 2015-01-01")
    await expect(page.locator("#sweep-heatmap .heatmaplayer")).to_have_count(1)
    await screen.screenshot("sweep-walk-forward")

    # The job's page sums it up per ticker and strategy.
    await screen.open(f"/jobs/{job_id}")
    row = screen.page.locator("#job-result .walk-forward-row")
    await expect(row).to_have_count(1, timeout=15_000)
    await expect(row).to_contain_text(re.compile(r"WALK\s*sma_crossover\s*5\s*-3\.2%\s*-58\.8%"))


async def test_two_sweeps_side_by_side_show_the_difference_of_their_metric_and_their_rank_correlation(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    regime = submit(pipeline, tenant, SWEEP, kind="trading-sweep")
    crossing_grid = {**SWEEP["strategies"][0], "signal": "crossing"}
    crossing = submit(pipeline, tenant, {**SWEEP, "strategies": [crossing_grid]}, kind="trading-sweep")
    for job_id in (regime, crossing):
        wait_for(pipeline, tenant, job_id, {"COMPLETED"}, timeout=120)
    await screen.open(f"/sweeps?job={crossing}")
    await expect(screen.page.locator("#sweep-progress")).to_contain_text("90 backtests of AAPL sma_crossover")
    await screen.page.click("#sweep-compare")
    await screen.page.get_by_role("option", name=re.compile(regime[:8])).click()
    summary = screen.page.locator("#sweep-rank-correlation")
    await expect(summary).to_contain_text(f"this sweep minus sweep {regime[:8]}", timeout=15_000)
    await expect(summary).to_contain_text(re.compile(r"over their 90 common cells: -?[01]\.\d{3}$"))
    await expect(screen.page.locator("#sweep-heatmap .heatmaplayer")).to_have_count(1)
    await expect(screen.page.locator("#sweep-heatmap .gtitle")).to_contain_text(f"minus sweep {regime[:8]}")
    await screen.screenshot("sweep-compare")


async def test_an_operator_reruns_a_completed_sweep_and_sees_that_it_reproduced(
    screen: Screen, pipeline: RunningPipeline, tenant: str
) -> None:
    job_id = submit(pipeline, tenant, SWEEP, kind="trading-sweep")
    wait_for(pipeline, tenant, job_id, {"COMPLETED"}, timeout=120)
    await screen.open(f"/jobs/{job_id}")
    # Each ticker's best cell with its neighbours' mean and worst score (numbers, not "n/a").
    best = screen.page.locator("#job-result .best-cell")
    await expect(best).to_have_count(2, timeout=15_000)
    await expect(best.first).to_contain_text(re.compile(r"sma_crossover.*-?\d+\.\d{3}\s*-?\d+\.\d{3}\s*-?\d+\.\d{3}$"))
    await screen.page.click("#job-rerun")
    link = screen.page.locator("#job-rerun-link")
    await expect(link).to_contain_text("re-running as job", timeout=15_000)
    rerun_id = (await link.inner_text()).rsplit(" ", 1)[1]
    wait_for(pipeline, tenant, rerun_id, {"COMPLETED"}, timeout=120)

    await link.click()
    await screen.page.wait_for_url(f"**/jobs/{rerun_id}")
    await screen.page.click("#job-compare")
    verdict = screen.page.locator("#job-compare-result")
    await expect(verdict).to_contain_text("reproduced: same request, prices, engine", timeout=15_000)
    await expect(verdict).to_contain_text("all 180 result rows bit-identical")


async def test_the_overview_and_health_pages_show_the_pipeline(
    screen: Screen, pipeline: RunningPipeline, tenant: str, stack: Settings
) -> None:
    wait_for(pipeline, tenant, submit(pipeline, tenant, {"job_type": "noop"}), {"COMPLETED"})
    await screen.open("/?range=1h")
    await expect(screen.page.locator("#tile-jobs .value")).not_to_have_text("0")
    await expect(screen.page.locator("#overview-status .barlayer .trace")).to_have_count(1)
    await screen.screenshot("overview")
    limited = await asyncio.to_thread(create_tenant, stack, f"limited-{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(set_limits, stack, limited.id, TenantLimits(rate_per_second=25, max_in_flight=700))
    await screen.open("/health")
    await expect(screen.page.locator("#health-partitions tr")).not_to_have_count(0)
    await expect(screen.page.locator("#health-workers")).to_contain_text("running")
    # Each tenant's limits in force, its own or the deployment's default, beside its jobs in flight.
    row = screen.page.locator("#health-limits tr", has_text=limited.id)
    await expect(row).to_contain_text("700")
    await expect(row).to_contain_text("25")
    await expect(row).to_contain_text("default")
    await screen.screenshot("health")


@pytest.mark.parametrize("path", ["/login", "/", "/jobs", "/sweeps", "/health", "/access", "/audit"])
async def test_every_page_fits_a_phones_width(
    browser: Browser, dashboard: Service, stack: Settings, platform_admin: str, path: str
) -> None:
    if path == "/access":  # the first tenant in the list, with a token: the widest table the page has
        tenant = await asyncio.to_thread(create_tenant, stack, f"0phone-{uuid.uuid4().hex[:8]}")
        await asyncio.to_thread(create_token, stack, tenant.id, Role.OPERATOR)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    screen = Screen(await context.new_page(), dashboard.url.removesuffix("/api/health"), stack.home / "screenshots")
    try:
        if path != "/login":
            await log_in(screen, platform_admin)
            await expect(screen.page.locator("#role-badge")).to_be_visible()
        await screen.open(path)
        await expect(screen.page.locator("#page h1" if path != "/login" else "h1")).to_be_visible()
        await screen.page.wait_for_load_state("networkidle")
        overflow = await screen.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
        await screen.screenshot(f"phone{path.replace('/', '-') or '-'}")
        assert screen.problems == []
    finally:
        await context.close()
