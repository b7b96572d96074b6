"""``make audit``: the locked dependencies checked against known vulnerabilities (pip-audit), with a reviewed ignore
list (deploy/pip-audit-ignore.txt, each entry with its reason).

Fails on any known vulnerability that is not on the list. When the vulnerability database cannot be reached at all
(every package comes back "could not be audited", as on a machine that reaches only package registries) it says so
loudly, as NOT AUDITED, and fails only where ZIXLY_AUDIT_REQUIRED=1 says the database must be reachable.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-dev.lock")
IGNORE_LIST = ROOT / "deploy" / "pip-audit-ignore.txt"
console = Console()


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    fixed_in: str


@dataclass(frozen=True)
class Audit:
    lock: Path
    findings: list[Finding]
    audited: int
    skipped: dict[str, str]


def ignored_advisories(text: str) -> list[str]:
    """The advisory ids of the ignore list; ValueError for an entry that gives no reason."""
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        advisory, _, reason = entry.partition("#")
        if not reason.strip():
            raise ValueError(f"{IGNORE_LIST.name}:{number}: {advisory.strip()} has no reason after '#'")
        ids.append(advisory.strip())
    return ids


def read_report(lock: Path, report: dict[str, Any]) -> Audit:
    findings: list[Finding] = []
    skipped: dict[str, str] = {}
    audited = 0
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            skipped[dependency["name"]] = dependency["skip_reason"]
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            findings.append(Finding(dependency["name"], dependency["version"], vuln["id"], fixed))
    return Audit(lock, findings, audited, skipped)


def audit(lock: Path, ignored: list[str]) -> Audit:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "-r",
        str(lock),
        "--disable-pip",
        "--require-hashes",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    for advisory in ignored:
        command += ["--ignore-vuln", advisory]
    # pip-audit exits 1 when it finds something: the JSON says what, so the exit status is not the verdict.
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"pip-audit did not report on {lock.name}:\n{done.stderr[-3000:]}") from None
    return read_report(lock, report)


def main() -> int:
    ignored = ignored_advisories(IGNORE_LIST.read_text())
    audits = [audit(lock, ignored) for lock in LOCKS]
    findings = [(a.lock.name, f) for a in audits for f in a.findings]
    if findings:
        table = Table("lock", "package", "version", "advisory", "fixed in", title="known vulnerabilities")
        for lock, finding in findings:
            table.add_row(lock, finding.package, finding.version, finding.advisory, finding.fixed_in)
        console.print(table)
        console.print(
            "[red]✗[/] upgrade (`make lock` after raising the range) or review into deploy/pip-audit-ignore.txt"
        )
        return 1
    unreachable = [a for a in audits if a.audited == 0 and a.skipped]
    partly = [a for a in audits if a.audited and a.skipped]
    for partial in partly:
        console.print(f"[red]✗[/] {partial.lock.name}: not audited: {', '.join(sorted(partial.skipped))}")
    if partly:
        return 1
    if unreachable:
        reason = next(iter(unreachable[0].skipped.values()))
        console.print(
            f"[bold yellow]NOT AUDITED[/]: the vulnerability database could not be reached ({reason}); "
            "every locked package was skipped. Run `make audit` where it is reachable."
        )
        return 1 if os.environ.get("ZIXLY_AUDIT_REQUIRED") == "1" else 0
    total = sum(a.audited for a in audits)
    console.print(
        f"[green]✓[/] {total} locked packages audited, no known vulnerability ({len(ignored)} reviewed and accepted)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
