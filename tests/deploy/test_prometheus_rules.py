"""The shipped Prometheus configuration and rules are valid, and every alert has unit tests that see it fire."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "zixly.yml"
RULE_TESTS = PROMETHEUS / "tests" / "zixly_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: deploy/bootstrap.sh installs Debian's prometheus package")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def alerts() -> set[str]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_the_scrape_configuration_and_its_rule_files_are_valid() -> None:
    checked = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", str(RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire_and_one_that_sees_it_quiet() -> None:
    tests: list[dict[str, Any]] = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}

    assert alerts() - firing == set()
    assert alerts() - quiet == set()


def test_the_scrape_configuration_names_every_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())

    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}

    assert jobs == {"receiver", "worker", "projector", "notifier", "dashboard"}
