"""Request metrics by route template and status, as a pure ASGI middleware (cheap on the hot path).

The receiver and the dashboard count their requests with it; Prometheus's job label tells them apart.
"""

import time

from fastapi.telemetry import TelemetryConfig
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# FastAPI's own OpenTelemetry instrumentation, off: these metrics are ours, and it asked the environment whether a
# tracer was configured on every request (3.7% of the receiver's CPU under load, py-spy).
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

REQUESTS = Counter("zixly_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "zixly_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
