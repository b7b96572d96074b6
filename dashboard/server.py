"""One server for the operators: the read-only API (ASGI) and the Dash pages (WSGI) beside it."""

import uvicorn
from a2wsgi import WSGIMiddleware
from fastapi import FastAPI

from dashboard.api import create_api
from dashboard.app import create_app
from kernel.settings import Settings


def create_server(settings: Settings) -> FastAPI:
    server = create_api(settings)
    pages = create_app(settings)
    server.state.pages = pages  # its callbacks, for the access tests that try every one of them
    server.mount("/", WSGIMiddleware(pages.server))  # type: ignore[arg-type]
    return server


def run_dashboard(settings: Settings) -> None:
    uvicorn.run(create_server(settings), host=settings.dashboard_host, port=settings.dashboard_port,
                log_level="warning", access_log=False)  # fmt: skip
