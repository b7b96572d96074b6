"""The dashboard serves plotly.js's cartesian bundle (scatter, bar, heatmap: every trace it draws) from its assets,
a third of the full bundle that dcc.Graph would otherwise fetch and compile on every page (docs/performance.md)."""

import re
from pathlib import Path

import plotly

ASSETS = Path(__file__).resolve().parents[2] / "dashboard" / "assets"


def _version(script: Path) -> str:
    found = re.search(r"plotly\.js(?: \(cartesian - minified\))? v(\d+\.\d+\.\d+)", script.read_text()[:400])
    assert found, f"no version in the header of {script}"
    return found.group(1)


def test_the_cartesian_bundle_is_the_same_plotly_js_release_as_the_one_plotly_ships() -> None:
    # When plotly is upgraded, fetch the matching plotly.js-cartesian-dist-min from npm.
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert _version(ASSETS / "plotly-cartesian.min.js") == _version(shipped)


def test_the_dashboard_draws_only_traces_the_cartesian_bundle_has() -> None:
    dashboard = ASSETS.parent
    traces = {name for path in dashboard.rglob("*.py") for name in re.findall(r"go\.([A-Z]\w+)\(", path.read_text())}
    assert traces - {"Figure"} <= {
        "Scatter",
        "Bar",
        "Heatmap",
        "Histogram",
        "Box",
        "Violin",
        "Contour",
        "Image",
        "Pie",
        "Histogram2d",
    }, traces
