"""Callbacks that run in the browser (``assets/zixly_live.js``), registered with types."""

from dash import Dash, Input, Output


def clientside(app: Dash, function: str, output: Output, *inputs: Input) -> None:
    app.clientside_callback(function, output, *inputs)  # type: ignore[no-untyped-call]
