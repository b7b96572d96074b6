"""How the pages write a sweep's numbers: one way for every page, "n/a" where a value is undefined."""


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    shown = f"{value:.3f}"
    return "0.000" if shown == "-0.000" else shown  # a tiny loss rounds to zero, not to "minus zero"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
