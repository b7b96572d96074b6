"""The row of headline numbers at the top of the overview and the health page."""

import re

from dash import html


def tile_row(prefix: str, shown: list[tuple[str, str]]) -> list[html.Div]:
    """One tile per (label, value); each has the id ``<prefix>-<label in kebab case>`` for tests and styling."""
    return [
        html.Div(
            [html.Div(value, className="value"), html.Div(label, className="label")],
            className="tile",
            id=f"{prefix}-{re.sub(r'[^a-z0-9]+', '-', label)}",
        )
        for label, value in shown
    ]
