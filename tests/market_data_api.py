"""A real market-data HTTP API on loopback, speaking the contract of ``market_data.http_api``.

It serves seeded prices for any ticker except ``NOPE``, and can be told to fail its next requests or to hang.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from tests.local_http import send_json


@dataclass
class MarketDataApi:
    url: str = ""
    fail_next: int = 0
    """Answer 503 to this many requests first."""
    hang_seconds: float = 0.0
    requests: list[str] = field(default_factory=list)

    def prices(self, ticker: str, start: str | None, end: str | None) -> list[dict[str, object]]:
        dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2022-12-31"))
        dates = dates[np.is_busday(dates)]
        rng = np.random.default_rng(sum(ticker.encode()))
        close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, dates.size)))
        keep = (dates >= np.datetime64(start or "1900-01-01")) & (dates <= np.datetime64(end or "2999-12-31"))
        return [{"date": str(d), "close": float(c)} for d, c in zip(dates[keep], close[keep], strict=True)]


def _handler(api: MarketDataApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api.requests.append(self.path)
            if api.hang_seconds:
                time.sleep(api.hang_seconds)
            if api.fail_next > 0:
                api.fail_next -= 1
                return self._send(503, {"error": "try later"})
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 3 or parts[:2] != ["v1", "prices"]:
                return self._send(404, {"error": "no such route"})
            ticker = parts[2]
            if ticker == "NOPE":
                return self._send(404, {"error": "unknown ticker"})
            query = parse_qs(url.query)
            bars = api.prices(ticker, query.get("start", [None])[0], query.get("end", [None])[0])
            self._send(200, {"ticker": ticker, "bars": bars})

        def _send(self, status: int, payload: object) -> None:
            send_json(self, status, payload)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def market_data_api() -> Iterator[MarketDataApi]:
    api = MarketDataApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
