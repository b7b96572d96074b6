from pathlib import Path

import pytest

from zixly.dependency_audit import Finding, ignored_advisories, read_report


def test_the_ignore_list_takes_ids_with_reasons_and_skips_comments() -> None:
    text = "# reviewed entries\n\nGHSA-aaaa-bbbb-cccc  # only the CLI parses it, never with tenant input\n"
    assert ignored_advisories(text) == ["GHSA-aaaa-bbbb-cccc"]


def test_an_ignored_advisory_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="GHSA-aaaa-bbbb-cccc has no reason"):
        ignored_advisories("GHSA-aaaa-bbbb-cccc\n")


def test_a_report_gives_findings_with_their_fixes_and_counts_what_could_not_be_audited() -> None:
    report = {
        "dependencies": [
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8", "fix_versions": ["3.1.3"]}]},
            {"name": "zixly-pipeline", "skip_reason": "not on PyPI"},
        ]
    }
    audit = read_report(Path("requirements.lock"), report)
    assert audit.findings == [Finding("jinja2", "3.1.2", "GHSA-h5c8", "3.1.3")]
    assert audit.audited == 2
    assert audit.skipped == {"zixly-pipeline": "not on PyPI"}
