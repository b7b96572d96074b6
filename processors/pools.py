"""The worker's process pool for CPU-bound work (backtests), whose processes never outlive the worker."""

import ctypes
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

from processors.sweeps.compute import warm_up

_PR_SET_PDEATHSIG = 1


def _start_pool_process() -> None:
    # A worker killed with SIGKILL cannot shut its pool down; the kernel then kills the pool's processes for it
    # instead of leaving them orphaned, holding memory.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # Forked from a Faust worker, the process inherits its signal handlers, which would try to stop a worker that
    # is not there: a TERM ends the process, and Ctrl-C is for the parent, which shuts the pool down.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()


def cpu_pool(size: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=size, initializer=_start_pool_process)
