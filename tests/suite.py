"""The whole suite as `make test-parallel` runs it: the slow fault suites in a pytest process of their own, beside
the rest, each on a stack of its own (folder, ports), so that neither waits for the other and neither can disturb
the other's brokers, consumer groups or read model. CI runs the single process of `make test`. The doubled load
found two defects (docs/reliability.md, "Records left unrun after an assignment"), both fixed; the browser tests'
timeouts are tight under it.

The replicated-cluster suite runs its cluster on Kafka 3.9.1, the rest on the default (4.4.0).

The rest prints as it goes; the fault suites' output follows when they end. Either failing fails the run.
`python -m tests.suite [PYTEST ARGS]` passes its arguments to both.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

FAULT_SUITES = [
    "tests/integration/test_chaos.py",
    "tests/integration/test_broker_faults.py",
    "tests/integration/test_worker_crashes.py",
    "tests/integration/test_replicated_cluster.py",
]
# The fault suites' stack: the tests' own (tests/conftest.py) shifted by 10000 ports, in a folder of its own.
FAULT_STACK = {
    "ZIXLY_HOME": str(ROOT / ".zixly" / "test-faults"),
    "ZIXLY_KAFKA_PORT": "29092",
    "ZIXLY_KAFKA_CONTROLLER_PORT": "29093",
    "ZIXLY_POSTGRES_PORT": "25432",
    "ZIXLY_S3_PORT": "29000",
}


def main(arguments: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", *arguments]
    log = ROOT / ".zixly" / "fault-suites.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "wb") as out:
        faults = subprocess.Popen(
            [*pytest, "-p", "no:cacheprovider", *FAULT_SUITES],
            cwd=ROOT,
            env=os.environ | FAULT_STACK,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            rest = subprocess.run([*pytest, *(f"--ignore={suite}" for suite in FAULT_SUITES)], cwd=ROOT, check=False)
            faults_code = faults.wait()
        finally:
            if faults.poll() is None:
                faults.terminate()
                faults.wait()
    minutes = (time.monotonic() - started) / 60
    print(f"\n==== fault suites ({', '.join(Path(s).stem for s in FAULT_SUITES)}), beside the rest ====", flush=True)
    print(log.read_text(errors="replace"), flush=True)
    print(f"==== the rest: exit {rest.returncode}; fault suites: exit {faults_code}; {minutes:.1f} min in all ====")
    return rest.returncode or faults_code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
