"""A real external backtest service on loopback: takes a dispatched sweep, answers with a reference, and calls the
pipeline back a moment later with results (computed with the engine on the same data) or with a failure."""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from market_data.providers import MarketData
from processors.backtest.engine import run_grid
from processors.sweeps.compute import backtest_config
from processors.sweeps.grid import grid_arrays
from schemas.sweeps import ExternalSweepRequest
from tests.local_http import send_json


@dataclass
class ExternalBacktests:
    url: str = ""
    fail_with: str | None = None
    callbacks_sent: int = 0
    callback_statuses: list[int] = field(default_factory=list)
    requests: list[ExternalSweepRequest] = field(default_factory=list)
    callback_delay: float = 0.3

    def results(self, request: ExternalSweepRequest) -> list[dict[str, Any]]:
        market = MarketData(files_folder=Path("/nonexistent"), http_base_url=None)
        sweep = request.sweep
        rows = []
        for ticker in sweep.tickers:
            prices = market.load(sweep.data_source, ticker, sweep.start, sweep.end)
            for grid in sweep.strategies:
                combinations = grid.combinations()
                metrics = run_grid(
                    prices.close,
                    grid.type,
                    grid_arrays(combinations),
                    backtest_config(sweep, prices.periods_per_year()),
                ).metrics
                for i, combination in enumerate(combinations):
                    values = {name: float(column[i]) for name, column in metrics.items()}
                    clean = {k: (v if v == v else None) for k, v in values.items()}  # NaN -> null
                    rows.append(
                        {
                            "ticker": ticker,
                            "strategy_type": grid.type.value,
                            "parameters": combination,
                            "score": clean[sweep.rank_by.value],
                            "metrics": clean,
                        }
                    )
        return rows

    def call_back(self, request: ExternalSweepRequest, reference: str) -> None:
        time.sleep(self.callback_delay)
        body: dict[str, Any] = {
            "job_id": str(request.job_id),
            "external_reference": reference,
            "callback_token": request.callback_token,
        }
        if self.fail_with:
            body |= {"status": "failed", "error": self.fail_with}
        else:
            body |= {"status": "completed", "results": self.results(request)}
        headers = {"X-Tenant-ID": request.tenant_id, "Authorization": f"Bearer {request.callback_token}"}
        response = httpx.post(request.callback_url, json=body, headers=headers, timeout=30)
        self.callbacks_sent += 1
        self.callback_statuses.append(response.status_code)


def _handler(service: ExternalBacktests) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = ExternalSweepRequest.model_validate_json(self.rfile.read(length))
            service.requests.append(request)
            reference = f"ext-{uuid.uuid4().hex[:8]}"
            send_json(self, 202, {"reference": reference})
            threading.Thread(target=service.call_back, args=(request, reference), daemon=True).start()

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def external_backtests() -> Iterator[ExternalBacktests]:
    service = ExternalBacktests()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}/backtests"
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
