"""One server for the operators: the read-only API (ASGI) and the Dash pages (WSGI) beside it."""

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI

from dashboard.api import create_api
from dashboard.app import create_app
from kernel.http_metrics import HttpMetricsMiddleware
from kernel.listening import run_uvicorn, serve_metrics
from kernel.settings import Settings


def create_server(settings: Settings) -> FastAPI:
    server = create_api(settings)
    pages = create_app(settings)
    server.state.pages = pages  # its callbacks, for the access tests that try every one of them
    server.mount("/", WSGIMiddleware(pages.server))  # type: ignore[arg-type]
    server.add_middleware(HttpMetricsMiddleware)
    return server


def run_dashboard(settings: Settings, metrics_port: int | None = None) -> None:
    # Metrics on a port of their own, as the workers' are: the dashboard's port faces users, this one Prometheus.
    serve_metrics(
        settings, "dashboard-metrics", settings.dashboard_metrics_port if metrics_port is None else metrics_port
    )
    run_uvicorn(
        settings,
        "dashboard",
        create_server,
        "dashboard_port",
        settings.dashboard_host,
        log_level="warning",
        access_log=False,
    )
