"""An integrator in front of the receiver, for the fuzzer: the webhooks it forwards are signed.

A webhook's body is signed (Standard Webhooks, a fresh ``webhook-id`` each) with the tenant's secret exactly as the
bytes go out, and a well-formed ``X-Tenant-ID`` is made the tenant's, so that schemathesis fuzzes past
authentication; a malformed one passes through, to be refused. API tokens are left to schemathesis (``--header``),
which also checks that a request without one is refused.
"""

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from standardwebhooks.webhooks import Webhook

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@contextmanager
def signing_proxy(target: str, tenant: str, secret: str) -> Iterator[str]:
    client = httpx.Client(base_url=target, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
            named = next((name for name in headers if name.lower() == "x-tenant-id"), None)
            if named is not None and _TENANT.fullmatch(headers[named]):
                headers[named] = tenant
            if self.command == "POST" and self.path.startswith("/webhook/"):
                webhook_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
                headers |= {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode("utf-8", "replace")),
                }
            raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
            try:
                response = client.request(self.command, self.path, content=body, headers=raw)
            except httpx.LocalProtocolError:  # a header no HTTP client may send (a NUL byte): what h11 says too
                self.send_error(400, "illegal header")
                return
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        def __getattr__(self, name: str) -> object:
            # Every method, TRACE and the like included, reaches the receiver, which is what answers them.
            if name.startswith("do_"):
                return self._forward
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        client.close()
