from typing import Any, cast

from dashboard.app import route
from dashboard.page_data import PageData

NO_DATA = cast(PageData, None)  # the pages below read nothing


def text_of(component: Any) -> str:
    children = getattr(component, "children", component)
    if isinstance(children, list):
        return " ".join(text_of(child) for child in children)
    return children if isinstance(children, str) else text_of(children) if children is not None else ""


def test_an_unknown_address_is_a_page_that_says_so() -> None:
    assert "No page at /nowhere." in text_of(route("/nowhere", "", NO_DATA))


def test_a_job_address_that_is_not_a_job_id_says_so_instead_of_failing() -> None:
    assert "'not-a-job' is not a job id." in text_of(route("/jobs/not-a-job", "", NO_DATA))


def test_the_overview_takes_its_time_range_from_the_address() -> None:
    page = route("/", "?range=7d", NO_DATA)
    radio = next(child for child in page.children[1].children if getattr(child, "id", None) == "overview-range")
    assert radio.value == "7d"
    assert route("/", "?range=forever", NO_DATA).children[1].children[1].value == "24h"
