"""Everything the forwarder writes under path.data and path.logs is owner-only, rotated log files included."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integration.disk_fixtures import FileLoggingForwarder
from tests.integration.forwarder_process import output_events, wait_until

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{input}"]
        prospector.scanner.check_interval: 0.1s
    forwarder.registry.flush: 0s
    output.file:
      path: ${{path.data}}/events
      rotate_every_kb: 1
    logging:
      level: debug
      to_stderr: true
      files:
        rotateeverybytes: 512
        keepfiles: 7
{permissions}
      metrics.period: 20ms
"""


def modes_under(directory: Path) -> dict[str, int]:
    return {str(path.relative_to(directory.parent)): stat.S_IMODE(path.stat().st_mode)
            for path in [directory, *directory.rglob("*")]}


@pytest.mark.parametrize("configured, expected", [(None, 0o600), ("0600", 0o600), ("0640", 0o640)],
                         ids=["default", "0600", "0640"])
def test_files_under_data_and_logs_are_owner_only_after_many_rotations(tmp_path, configured, expected):
    source = tmp_path / "input" / "app.log"
    source.parent.mkdir()
    source.write_text("".join(f"line {n}\n" for n in range(50)))
    permissions = f"        permissions: {configured}" if configured else ""
    forwarder = FileLoggingForwarder(tmp_path, CONFIG.format(input=source, permissions=permissions)).start()
    try:
        forwarder.wait_for_log("forwarder started")
        wait_until(lambda: len(output_events(tmp_path)) == 50, 30, "50 events in the output")
        with open(source, "a") as handle:
            handle.write("".join(f"line {n}\n" for n in range(50, 100)))
        wait_until(lambda: len(output_events(tmp_path)) == 100, 30, "100 events in the output")
        assert len(list((tmp_path / "data" / "events").iterdir())) > 1, "the output file was rotated too"
        # Every metrics line is longer than rotateeverybytes, so each one rotates the log file.
        wait_until(lambda: sum(line.get("message") == "metrics" for line in forwarder.log_lines()) >= 60, 60,
                   "60 metrics lines, each rotating the log file")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    log_files = sorted(path.name for path in (tmp_path / "logs").iterdir())
    assert log_files == ["forwarder", *(f"forwarder.{n}" for n in range(1, 7))]
    modes = {**modes_under(tmp_path / "data"), **modes_under(tmp_path / "logs")}
    assert "data/meta.json" in modes and "data/registry" in modes and "logs/forwarder.6" in modes
    wrong = {}
    for name, mode in modes.items():
        is_directory = (tmp_path / name).is_dir()
        wanted = 0o750 if is_directory else (expected if name.startswith("logs/") else 0o600)
        if mode != wanted:
            wrong[name] = f"{mode:04o} (want {wanted:04o})"
    assert wrong == {}
