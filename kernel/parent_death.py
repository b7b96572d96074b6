"""Processes that must not outlive the process that started them (pool and server worker processes)."""

import ctypes
import multiprocessing
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, however the parent dies.

    A parent killed with SIGKILL cannot stop its children itself; without this they would run on, orphaned,
    holding memory and ports. Linux only; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # the parent died before the signal was set: it will never come
        os.kill(os.getpid(), sig)


def in_a_child_process() -> bool:
    """True in a process that ``multiprocessing`` started (a uvicorn worker, a pool process)."""
    return multiprocessing.parent_process() is not None
