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


OLDER_INSTALLATION_CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["${path.data}/inbox/*.log"]
        prospector.scanner.check_interval: 0.1s
    forwarder.registry.flush: 0s
    output.file:
      path: ${path.data}/events
      rotate_every_kb: 1
    logging:
      to_stderr: true
      files:
        rotateeverybytes: 2048
        permissions: 0640
      metrics.period: 20ms
"""


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def tightening_lines(forwarder: FileLoggingForwarder) -> list[str]:
    return [line["message"] for line in forwarder.log_lines() if "made owner-only" in line.get("message", "")]


def test_an_older_installation_is_made_owner_only_at_start_and_nothing_else_is_touched(tmp_path):
    data, logs = tmp_path / "data", tmp_path / "logs"
    source = data / "inbox" / "app.log"
    source.parent.mkdir(parents=True)
    source.write_text("".join(f"line {n}\n" for n in range(50)))
    forwarder = FileLoggingForwarder(tmp_path, OLDER_INSTALLATION_CONFIG)
    try:
        forwarder.start()
        wait_until(lambda: len(output_events(tmp_path)) == 50, 30, "50 events in the output")
        wait_until((logs / "forwarder.1").exists, 30, "a rotated log file")
        assert forwarder.terminate() == 0
        lines_before = len(tightening_lines(forwarder))  # the data directory made by this test was 0755

        # What an earlier version left behind (umask 022 modes), and what is not the forwarder's.
        older = {data: 0o755, data / "forwarder.lock": 0o644, data / "registry": 0o775,
                 data / "registry" / "forwarder": 0o755, data / "events": 0o755, logs: 0o755,
                 logs / "forwarder": 0o644, logs / "forwarder.1": 0o664}
        older.update({path: 0o644 for path in (data / "registry" / "forwarder").iterdir()})
        older.update({path: 0o664 for path in (data / "events").iterdir()})
        stricter_by_the_site = {data / "meta.json": 0o400}
        (data / "notes.txt").write_text("the operator's\n")
        (logs / "other-app.log").write_text("another program's log\n")
        (data / "registry" / "forwarder" / "link").symlink_to(data / "notes.txt")
        not_ours = {data / "inbox": 0o755, source: 0o644, data / "notes.txt": 0o666, logs / "other-app.log": 0o644}
        for path, mode in {**older, **stricter_by_the_site, **not_ours}.items():
            path.chmod(mode)

        forwarder.start()
        assert forwarder.terminate() == 0
        assert len(tightening_lines(forwarder)) == lines_before + 1
        forwarder.start()
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()

    line = tightening_lines(forwarder)[-1]
    for path, mode in older.items():
        wanted = 0o750 if path.is_dir() else 0o640 if path.parent == logs else 0o600
        assert f"{path} {mode:04o} -> {wanted:04o}" in line
    assert str(data / "inbox") not in line and "notes.txt" not in line and "other-app" not in line
    assert len(tightening_lines(forwarder)) == lines_before + 1, "the third start found nothing left to tighten"

    wrong = {}
    for path in [data, *data.rglob("*"), logs, *logs.rglob("*")]:
        if path.is_symlink():
            continue
        if path in not_ours or path in stricter_by_the_site:
            wanted = {**not_ours, **stricter_by_the_site}[path]
        else:
            wanted = 0o750 if path.is_dir() else 0o640 if path.parent == logs else 0o600
        if mode_of(path) != wanted:
            wrong[str(path.relative_to(tmp_path))] = f"{mode_of(path):04o} (want {wanted:04o})"
    assert wrong == {}


SHARED_OUTPUT_CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["${path.home}/input/*.log"]
    output.file:
      path: ${path.home}/shared
    logging.to_stderr: true
    logging.metrics.enabled: false
"""


def test_a_shared_sticky_directory_pointed_at_by_mistake_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    (tmp_path / "input").mkdir()
    forwarder = FileLoggingForwarder(tmp_path, SHARED_OUTPUT_CONFIG)
    try:
        forwarder.start()
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert mode_of(shared) == 0o1777
