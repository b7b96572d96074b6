import shutil
from pathlib import Path

import pytest

from processors.backtest import version


def test_the_engine_version_changes_with_any_of_the_engines_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "backtest"
    shutil.copytree(Path(version.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(version, "_ENGINE", copy)
    version.engine_version.cache_clear()
    try:
        before = version.engine_version()
        assert "numpy" in before
        assert "numba" in before
        assert version.engine_version.__wrapped__() == before  # the same files, the same version
        kernel = copy / "kernel.py"
        kernel.write_text(kernel.read_text() + "\n# a comment is a change too\n")
        assert version.engine_version.__wrapped__() != before
    finally:
        version.engine_version.cache_clear()
