"""The placeholder dashboard serves its page and reads the projections (browser tests come with the real one)."""

import json

from dashboard.app import create_app
from kernel.settings import Settings


def test_the_dashboard_serves_its_page_and_a_refresh_reads_job_counts(stack: Settings) -> None:
    app = create_app(stack)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert b"Zixly Pipeline" in client.get("/").data
    response = client.post(
        "/_dash-update-component",
        json={
            "output": "..overview-counts.children...overview-recent.children..",
            "outputs": [{"id": "overview-counts", "property": "children"},
                        {"id": "overview-recent", "property": "children"}],
            "inputs": [{"id": "overview-refresh", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["overview-refresh.n_intervals"],
            "state": [],
        },
    )  # fmt: skip
    assert response.status_code == 200, response.data
    body = json.loads(response.data)
    tiles = body["response"]["overview-counts"]["children"]
    assert any("COMPLETED" in tile["props"]["children"] for tile in tiles)
