"""The worker's process pool for CPU-bound work (backtests), whose processes never outlive the worker."""

import signal
from concurrent.futures import ProcessPoolExecutor

from kernel.parent_death import die_with_parent
from processors.sweeps.compute import warm_up


def _start_pool_process() -> None:
    # A worker killed with SIGKILL cannot shut its pool down; the kernel then kills the pool's processes for it
    # instead of leaving them orphaned, holding memory.
    die_with_parent(signal.SIGKILL)
    # Forked from a Faust worker, the process inherits its signal handlers, which would try to stop a worker that
    # is not there: a TERM ends the process, and Ctrl-C is for the parent, which shuts the pool down.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()


def cpu_pool(size: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=size, initializer=_start_pool_process)
