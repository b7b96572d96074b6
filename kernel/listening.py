"""Where a process listens, said once it is bound: a port of 0 lets the system choose, and the process reports the
port it got in its log and, when ``ZIXLY_READY_FILE`` names one, in a ready file a test or supervisor reads.

Picking a free port and handing it to a child raced: the port could be taken between the pick and the child's
bind (by another test's listener or an outgoing connection from the ephemeral range).
"""

import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import start_http_server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from kernel.logging import get_logger
from kernel.settings import Settings

log = get_logger(__name__)


def report_listening(settings: Settings, listener: str, host: str, port: int) -> None:
    log.info("listening", listener=listener, host=host, port=port)
    if settings.ready_file is not None:
        line = json.dumps({"listener": listener, "port": port, "pid": os.getpid()}) + "\n"
        # One write of a short line to a file opened for appending: processes reporting at once never interleave.
        fd = os.open(settings.ready_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def read_ready_file(path: Path) -> dict[str, int]:
    """Listener → port, from the lines written so far (the newest wins)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    ports: dict[str, int] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written
        ports[entry["listener"]] = int(entry["port"])
    return ports


def serve_metrics(settings: Settings, listener: str, port: int) -> int:
    """Prometheus' exposition on ``port`` (0: any free one) in a thread of its own; returns the port bound."""
    server, _ = start_http_server(port, addr=settings.metrics_bind_host)
    bound: int = server.server_port
    report_listening(settings, listener, settings.metrics_bind_host, bound)
    return bound


def run_uvicorn(
    settings: Settings,
    listener: str,
    app: str | Callable[[Settings], Any],
    port_setting: str,
    host: str,
    **options: Any,
) -> None:
    """uvicorn.run, but with the socket bound first so that its port, chosen by the system for 0, is reported and
    known to the app before it starts (uvicorn.run itself binds first only for several workers).

    ``app`` is an import path of a factory that reads the environment (each worker process runs it), or a function
    of the settings; either sees ``port_setting`` (a field of Settings) as the port bound, for the URLs it hands
    out."""
    sock = _bound_socket(host, getattr(settings, port_setting))
    bound: int = sock.getsockname()[1]
    os.environ[f"ZIXLY_{port_setting.upper()}"] = str(bound)
    application = app if isinstance(app, str) else app(settings.replaced(**{port_setting: bound}))
    config = uvicorn.Config(application, host=host, port=bound, **options)
    report_listening(settings, listener, host, bound)
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run: an app that failed to start fails the process


def _bound_socket(host: str, port: int) -> socket.socket:
    """As uvicorn binds a TCP socket (inheritable, for its worker processes)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
