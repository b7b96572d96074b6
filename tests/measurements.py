"""Figures the integration tests measure (latencies under attack, how long a tenant waits), shown at the end of the
run and kept in $ZIXLY_HOME/measurements.txt, so that CI's output carries them."""

import os
from pathlib import Path

_reported: list[str] = []


def report(line: str) -> None:
    _reported.append(line)
    home = Path(os.environ["ZIXLY_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with (home / "measurements.txt").open("a") as kept:
        kept.write(line + "\n")


def reported() -> list[str]:
    return list(_reported)
