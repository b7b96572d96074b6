"""The Grafana dashboard is well formed, its queries parse, and it (and the rules) name only metrics that exist."""

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "zixly-pipeline.json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "zixly.yml"
# Every module that registers metrics; importing them fills the default registry.
METRIC_MODULES = (
    "kernel.metrics",
    "kernel.http_metrics",
    "kernel.log_health",
    "processors.metrics",
    "projections.metrics",
    "producers.backpressure",
)
PROMETHEUS_OWN = {"up"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def exported_metrics() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for metric in REGISTRY.collect():
        names |= {sample.name for sample in metric.samples} | {metric.name}
    # Labelled series exist once a label set is used; name them from the family without waiting for that.
    return names | {f"{name}_{suffix}" for name in names for suffix in ("total", "bucket", "count", "sum")}


def named_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(zixly_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+)\b", expr)) | (
        PROMETHEUS_OWN & set(re.findall(r"\b[a-z_]+\b", expr))
    )


def test_the_dashboard_has_what_grafana_needs_to_import_it() -> None:
    board = dashboard()

    assert board["uid"]
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    variables = {variable["name"] for variable in board["templating"]["list"]}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        assert panel["datasource"]["uid"].strip("${}") in variables


def test_no_two_panels_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]


def test_every_query_of_the_dashboard_parses(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: deploy/bootstrap.sh --browser installs Debian's prometheus package")
    # promtool parses rule files offline: each query becomes a recording rule of its own.
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": expr} for index, expr in enumerate(expressions())
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(as_rules))

    checked = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "queries.yml")], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_and_the_rules_name_only_metrics_the_services_export_or_the_rules_record() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = exported_metrics() | recorded | PROMETHEUS_OWN

    unknown = {
        name: expr
        for expr in [*expressions(), *(rule["expr"] for rule in rules())]
        for name in named_metrics(expr)
        if name not in known
    }

    assert unknown == {}
