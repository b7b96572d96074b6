"""The import rules between the packages, as pyproject.toml's import-linter contracts state them: the CLI above the
five services, no service importing another, the kernel under them and the contracts (``schemas``) under all, with
no I/O library in the contracts."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "schemas",
    "kernel",
    "read_model",
    "market_data",
    "identity",
    "producers",
    "processors",
    "projections",
    "notifier",
    "dashboard",
    "zixly",
)


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"]
    environment = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=120)


def test_every_package_keeps_to_its_layer() -> None:
    linted = lint_imports(ROOT)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 broken" in linted.stdout


def layout_where(folder: Path, package: str, imports: str) -> Path:
    """An empty copy of the project's layout and contracts, in which one module of ``package`` imports ``imports``."""
    for name in PACKAGES:
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text("")
    (folder / package / "leak.py").write_text(f"import {imports}\n")
    (folder / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return folder


def test_a_service_that_imports_another_breaks_the_rules(tmp_path: Path) -> None:
    linted = lint_imports(layout_where(tmp_path, "producers", imports="projections"))
    assert linted.returncode != 0
    assert "producers.leak -> projections" in linted.stdout


def test_the_kernel_importing_a_service_breaks_the_rules(tmp_path: Path) -> None:
    linted = lint_imports(layout_where(tmp_path, "kernel", imports="processors"))
    assert linted.returncode != 0
    assert "kernel.leak -> processors" in linted.stdout


def test_the_read_model_importing_a_service_breaks_the_rules(tmp_path: Path) -> None:
    linted = lint_imports(layout_where(tmp_path, "read_model", imports="projections"))
    assert linted.returncode != 0
    assert "read_model.leak -> projections" in linted.stdout


def test_contracts_that_reach_for_the_broker_break_the_rules(tmp_path: Path) -> None:
    linted = lint_imports(layout_where(tmp_path, "schemas", imports="aiokafka"))
    assert linted.returncode != 0
    assert "schemas.leak -> aiokafka" in linted.stdout
