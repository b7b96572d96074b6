from typing import Any, cast

import pytest

from dashboard.app import route
from dashboard.page_data import PageData
from schemas.access import Principal, Role

NO_DATA = cast(PageData, None)  # the pages below read nothing
VIEWER = Principal("user", "v@acme.test", Role.VIEWER, "acme")
OPERATOR = Principal("user", "o@acme.test", Role.OPERATOR, "acme")


def text_of(component: Any) -> str:
    children = getattr(component, "children", component)
    if isinstance(children, list):
        return " ".join(text_of(child) for child in children)
    return children if isinstance(children, str) else text_of(children) if children is not None else ""


def test_an_unknown_address_is_a_page_that_says_so() -> None:
    assert "No page at /nowhere." in text_of(route("/nowhere", "", NO_DATA, VIEWER))


def test_a_job_address_that_is_not_a_job_id_says_so_instead_of_failing() -> None:
    assert "'not-a-job' is not a job id." in text_of(route("/jobs/not-a-job", "", NO_DATA, VIEWER))


def test_the_overview_takes_its_time_range_from_the_address() -> None:
    page = route("/", "?range=7d", NO_DATA, VIEWER)
    radio = next(child for child in page.children[1].children if getattr(child, "id", None) == "overview-range")
    assert radio.value == "7d"
    assert route("/", "?range=forever", NO_DATA, VIEWER).children[1].children[1].value == "24h"


@pytest.mark.parametrize(("path", "denied"), [("/access", "manage API tokens"), ("/audit", "read the audit log")])
@pytest.mark.parametrize("caller", [VIEWER, OPERATOR])
def test_the_admin_pages_tell_a_caller_below_tenant_admin_that_they_are_not_allowed(
    path: str, denied: str, caller: Principal
) -> None:
    assert f"A {caller.role} may not {denied}." in text_of(route(path, "", NO_DATA, caller))


def test_nothing_is_routed_without_a_caller() -> None:
    assert route("/jobs", "", NO_DATA, None) is None
