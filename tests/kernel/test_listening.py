import json
import urllib.request
from pathlib import Path

from kernel.listening import read_ready_file, report_listening, serve_metrics
from kernel.settings import load_settings


def test_each_listener_reported_is_a_line_of_the_ready_file_and_the_newest_port_of_a_name_wins(tmp_path: Path) -> None:
    settings = load_settings().replaced(ready_file=tmp_path / "ready")
    report_listening(settings, "receiver", "127.0.0.1", 18000)
    report_listening(settings, "worker-metrics", "127.0.0.1", 19101)
    report_listening(settings, "receiver", "127.0.0.1", 18001)
    assert read_ready_file(tmp_path / "ready") == {"receiver": 18001, "worker-metrics": 19101}
    first = json.loads((tmp_path / "ready").read_text().splitlines()[0])
    assert first["listener"] == "receiver"
    assert isinstance(first["pid"], int)


def test_a_ready_file_not_yet_written_or_with_a_line_half_written_reads_as_what_is_whole(tmp_path: Path) -> None:
    assert read_ready_file(tmp_path / "absent") == {}
    (tmp_path / "ready").write_text('{"listener": "dashboard", "port": 8050, "pid": 1}\n{"listener": "dash')
    assert read_ready_file(tmp_path / "ready") == {"dashboard": 8050}


def test_metrics_on_port_zero_listen_on_a_port_the_system_picked_and_say_which(tmp_path: Path) -> None:
    settings = load_settings().replaced(ready_file=tmp_path / "ready")
    port = serve_metrics(settings, "projector-metrics", 0)
    assert port > 0
    assert read_ready_file(tmp_path / "ready") == {"projector-metrics": port}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"# HELP" in response.read()
