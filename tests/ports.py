"""Fixed ports for the servers that must be told theirs before they start: a Kafka cluster's KRaft quorum names its
voters' ports up front, and `zixly up` checks and prints the ports it is configured with, as operators run it.

Every server of ours that can take a port the system picks does (port 0, reported in its ready file). For the
others, picking a port that is free now and handing it over raced twice: the system could hand the same port to an
outgoing connection or a port-0 bind before the server bound it, and two pytest processes of one CI run (the slow
fault suites run beside the rest) could pick the same one. So the ports come from below the system's ephemeral
range, which it never hands out, and each is held by a file lock for as long as the test process lives.
"""

import fcntl
import random
import tempfile
from pathlib import Path
from typing import IO

from zixly.stack.ports import in_use

LOCKS = Path(tempfile.gettempdir()) / "zixly-test-ports"
_held: list[IO[str]] = []  # released when the process exits, whatever ends it


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def reserve_ports(count: int = 1, step: int = 1) -> int:
    """A port P such that P, P + step, … (``count`` of them) are free and reserved for this process; returns P."""
    LOCKS.mkdir(exist_ok=True)
    high = _ephemeral_low() - count * step
    low = max(high - 10_000, 20_000)
    for _ in range(1000):
        base = random.randrange(low, high)
        locks: list[IO[str]] = []
        for port in range(base, base + count * step, step):
            lock = open(LOCKS / f"{port}.lock", "w")  # noqa: SIM115 - held past this function, closed at exit
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                break
            locks.append(lock)
            if in_use("127.0.0.1", port):
                break
        else:
            _held.extend(locks)
            return base
        for lock in locks:
            lock.close()
    raise RuntimeError(f"no {count} free ports {step} apart below {high}")


def reserve_port() -> int:
    return reserve_ports(1)
