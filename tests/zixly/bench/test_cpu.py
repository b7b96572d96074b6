import subprocess
import sys
import time

import psutil

from zixly.bench.cpu import LOAD_GENERATOR, CpuMeter, descendants_of, tree_of

SPIN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_a_busy_process_is_counted_in_its_group_and_an_idle_one_is_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=30)])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        meter = CpuMeter({"busy": tree_of(busy.pid), "idle": tree_of(idle.pid)})
        with meter.measure() as cpu:
            time.sleep(1.0)
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()
    assert cpu.cores["busy"] > 0.2
    assert cpu.cores["idle"] < 0.05


def test_a_load_generator_that_exits_within_the_measurement_is_counted_from_the_reaped_children() -> None:
    meter = CpuMeter({})
    with meter.measure() as cpu:
        subprocess.run([sys.executable, "-c", SPIN.format(seconds=0.5)], check=True)
    assert cpu.cores[LOAD_GENERATOR] > 0.2


def test_a_parents_descendants_are_counted_apart_from_the_parent() -> None:
    spawn_busy_child = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SPIN.format(seconds=30)!r}])\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", spawn_busy_child])
    try:
        time.sleep(0.5)
        meter = CpuMeter({"parent": lambda process: process.pid == parent.pid, "pool": descendants_of(parent.pid)})
        with meter.measure() as cpu:
            time.sleep(1.0)
    finally:
        for process in tree_processes(parent.pid):
            process.kill()
        parent.wait()
    assert cpu.cores["pool"] > 0.2
    assert cpu.cores["parent"] < 0.05


def tree_processes(root_pid: int) -> list[psutil.Process]:
    root = psutil.Process(root_pid)
    return [*root.children(recursive=True), root]
