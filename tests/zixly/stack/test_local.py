import os
from pathlib import Path

from kernel.settings import Settings
from zixly.stack.local import LocalStack


def test_a_stale_pid_file_is_removed_and_the_operator_told_which_and_why(tmp_path: Path) -> None:
    stack = LocalStack(Settings(home=tmp_path))
    stack.s3.pidfile.write(os.getpid())  # a live pid, but this test's, not the S3 server's
    notices: list[str] = []

    stack._clear_stale_pid_files(notices.append)

    assert not stack.s3.pidfile.path.exists()
    assert len(notices) == 1
    assert "S3: removing a stale pid file" in notices[0]
    assert f"pid {os.getpid()} is not the server" in notices[0]


def test_a_pid_file_of_a_running_server_is_kept(tmp_path: Path) -> None:
    stack = LocalStack(Settings(home=tmp_path))
    stack.s3.pidfile.command = "pytest"  # this very process plays the server
    stack.s3.pidfile.write(os.getpid())
    notices: list[str] = []

    stack._clear_stale_pid_files(notices.append)

    assert stack.s3.pidfile.path.exists()
    assert notices == []
