"""Background server processes tracked by pid files, so that a later command can find and stop them."""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from zixly.stack.errors import StackError


class PidFile:
    """A server's pid, trusted only while that pid runs the server's ``command``: pids are reused after a reboot."""

    def __init__(self, path: Path, command: str | None = None) -> None:
        self.path = path
        self.command = command

    def read(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def alive_pid(self) -> int | None:
        """The recorded pid if that process still runs (and is not a zombie)."""
        pid = self.read()
        if pid is None or not pid_alive(pid):
            return None
        if self.command is not None and self.command not in command_line(pid):
            return None
        return pid

    def stale(self) -> bool:
        """True when the file names a pid that no longer runs the server (a crash, a reboot)."""
        return self.path.exists() and self.alive_pid() is None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def spawn(
    command: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    dies_with_parent: signal.Signals | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own session, so that Ctrl-C on the terminal reaches only whoever manages it.

    ``dies_with_parent``: the kernel sends the process this signal when its parent dies, however it dies (SIGKILL,
    a broken pipe, a crash), so a supervisor cannot leave it orphaned. ``user``: run it as that user (from root).
    """
    prefix = _setpriv(dies_with_parent, user) if dies_with_parent is not None or user is not None else []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*prefix, *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def _setpriv(dies_with_parent: signal.Signals | None, user: str | None) -> list[str]:
    # setpriv (util-linux) sets the parent-death signal and then execs, so the pid stays the server's. It sets the
    # signal after changing user, which would clear it; a preexec_fn would do the same in a forked copy of a
    # threaded parent, which Python warns can deadlock.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise StackError("setpriv is needed to supervise the stack's processes: apt-get install util-linux")
    prefix = [setpriv]
    if user is not None:
        prefix += ["--reuid", user, "--regid", user, "--init-groups"]
    if dies_with_parent is not None:
        prefix += ["--pdeathsig", dies_with_parent.name.removeprefix("SIG")]
    return [*prefix, "--"]


def terminate(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``. True when the process had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return False
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
