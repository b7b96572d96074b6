"""Where a child that cannot report its port (a Java or Go server started on port 0) listens."""

import psutil


def listening_port(pid: int) -> int | None:
    """The TCP port the process listens on, once it does."""
    for connection in psutil.Process(pid).net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN:
            return int(connection.laddr.port)
    return None
