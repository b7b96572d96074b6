"""The ports the local stack and its services listen on, checked free before anything starts on them.

A port taken by another program is the most common reason a second start fails; saying which port, which of our
servers wants it, who holds it and which setting moves it, beats a stack trace from the server that hit it.
"""

import errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zixly.stack.errors import StackError


@dataclass(frozen=True)
class WantedPort:
    number: int
    server: str
    setting: str
    host: str = "127.0.0.1"


def ensure_free(ports: Iterable[WantedPort]) -> None:
    """Raise StackError for the first port that something already listens on."""
    for port in ports:
        if in_use(port.host, port.number):
            holder = holder_of(port.number)
            held = f" (held by {holder})" if holder else ""
            raise StackError(
                f"port {port.number} on {port.host}, wanted by {port.server}, is in use by another program{held}: "
                f"stop it, or set {port.setting} to a free port"
            )


def in_use(host: str, number: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # Without SO_REUSEADDR a port in TIME_WAIT would look taken, though the server could bind it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, number))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def holder_of(number: int) -> str | None:
    """'pid 123 (postgres)' for the process listening on the port, when /proc lets us see it."""
    inodes = _listening_inodes(number)
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                return f"pid {pid}, {name}"
    return None


def _listening_inodes(number: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == number:  # 0A: LISTEN
                inodes.add(inode)
    return inodes
