"""The forwarder process on a full or read-only disk, and on a registry left damaged by earlier runs.

A disk problem is the operator's to fix: one line naming the path and the fix, exit 1,
never a traceback, and no event lost (what was not committed is read again at the
next start). Damaged registry files are repaired or kept aside, never silently lost.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from tests.integration.disk_fixtures import (
    FileLoggingForwarder,
    error_lines,
    fill_filesystem,
    read_only,
    small_filesystem,
)
from tests.integration.forwarder_process import wait_until

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{input}"]
        prospector.scanner.check_interval: 0.1s
    forwarder.registry.flush: 0s
    # each ship() waits for its lines: without a short flush.timeout every batch waits the default 1 s
    queue.mem.flush.timeout: 10ms
    output.file:
      path: ${{path.home}}/events
    logging.to_stderr: true
    logging.metrics.enabled: false
"""


class Site:
    """A forwarder home with one input file and the output outside path.data (so a full data disk spares it)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.source = home / "input" / "app.log"
        self.source.parent.mkdir(parents=True)
        self.source.touch()
        self.lines_written = 0
        self.forwarder = FileLoggingForwarder(home, CONFIG.format(input=self.source))
        self.registry = home / "data" / "registry" / "forwarder"

    def start(self) -> FileLoggingForwarder:
        """Starts with path.logs under path.data, so a full data disk is a full log disk too."""
        self._stderr_offset = self.forwarder.log_path.stat().st_size if self.forwarder.log_path.exists() else 0
        return self.forwarder.start("--path.logs", str(self.home / "data" / "logs"))

    def started(self) -> None:
        self.forwarder.wait_for_log("forwarder started")

    def stderr_of_last_start(self) -> str:
        return self.forwarder.log_path.read_bytes()[self._stderr_offset:].decode(errors="replace")

    def exit_status(self, timeout: float = 60) -> int:
        return self.forwarder.process.wait(timeout=timeout)

    def ship(self, count: int) -> None:
        """Appends `count` numbered lines and waits until every line written so far was shipped."""
        with open(self.source, "a") as handle:
            for n in range(self.lines_written, self.lines_written + count):
                handle.write(f"line {n}\n")
        self.lines_written += count
        wait_until(lambda: set(range(self.lines_written)) <= set(self.shipped()), 60,
                   f"lines 0..{self.lines_written - 1} in the output")

    def shipped(self) -> Counter:
        """How many times each line number was delivered."""
        numbers: Counter = Counter()
        for path in (self.home / "events").glob("*.ndjson"):
            for raw in path.read_text().splitlines():
                try:
                    numbers[int(json.loads(raw)["message"].split()[1])] += 1
                except (ValueError, KeyError):
                    continue  # a line torn by kill -9 was never acknowledged
        return numbers

    def registry_files(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in self.registry.iterdir()}

    def journal_failures_logged(self) -> int:
        return sum("cannot write journal" in line.get("message", "") for line in self.forwarder.log_lines())


def ship_until_journal_fails(site: Site) -> None:
    """On a full disk the journal still grows inside its last allocated page; a few flushes later it cannot."""
    wait_until(lambda: site.ship(20) or site.journal_failures_logged(), 120, "a failed journal write")


def assert_one_line_error(site: Site, *fragments: str) -> str:
    stderr = site.stderr_of_last_start()
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_read_only_registry_directory_is_one_line_and_exit_1(tmp_path):
    site = Site(tmp_path)
    site.start()
    try:
        site.ship(20)
        assert site.forwarder.terminate() == 0
        before = site.registry_files()
        with read_only(site.registry):
            site.start()
            assert site.exit_status() == 1
        line = assert_one_line_error(site, str(site.registry), "read-only")
        assert "forwarder.registry.path" in line
        assert site.registry_files() == before

        site.start()
        site.started()
        site.ship(10)
        assert site.forwarder.terminate() == 0
    finally:
        site.forwarder.stop()
    assert set(site.shipped().values()) == {1}


def test_start_on_a_full_disk_is_one_line_and_exit_1(tmp_path):
    with small_filesystem(tmp_path / "data") as data:
        site = Site(tmp_path)
        site.start()
        try:
            site.ship(20)
            assert site.forwarder.terminate() == 0
            before = site.registry_files()
            filler = fill_filesystem(data)
            site.start()
            assert site.exit_status() == 1
            assert_one_line_error(site, str(data), "No space left on device", "free space")
            assert site.registry_files() == before

            filler.unlink()
            site.start()
            site.started()
            site.ship(10)
            assert site.forwarder.terminate() == 0
        finally:
            site.forwarder.stop()
    assert set(site.shipped().values()) == {1}


def test_sigterm_while_the_disk_is_full_is_one_line_exit_1_and_loses_nothing(tmp_path):
    with small_filesystem(tmp_path / "data") as data:
        site = Site(tmp_path)
        site.start()
        try:
            site.ship(20)
            filler = fill_filesystem(data)
            ship_until_journal_fails(site)
            assert site.forwarder.terminate() == 1
            assert_one_line_error(site, str(site.registry), "No space left on device", "free space",
                                  "sent again")

            filler.unlink()
            site.start()
            site.started()
            site.ship(10)
            assert site.forwarder.terminate() == 0
        finally:
            site.forwarder.stop()
    assert set(site.shipped()) == set(range(site.lines_written))


def test_journal_write_failures_are_logged_once_with_a_count(tmp_path):
    with small_filesystem(tmp_path / "data") as data:
        site = Site(tmp_path)
        site.start()
        try:
            site.started()
            filler = fill_filesystem(data)
            ship_until_journal_fails(site)
            # Each acknowledged batch is one more failed journal write. `ship` returns once the lines are in the
            # output, which can be before their commit is attempted; the output writes the next batch only after
            # that commit, so an eleventh batch makes sure the first ten were all attempted.
            for _ in range(11):
                site.ship(5)
            assert site.journal_failures_logged() == 1

            filler.unlink()
            site.ship(5)
            recovered = site.forwarder.wait_for_log("registry: writing the journal again")["message"]
            failures = int(re.search(r"after (\d+) failed", recovered).group(1))
            assert failures >= 11, recovered
            assert site.forwarder.terminate() == 0
        finally:
            site.forwarder.stop()


def test_torn_last_journal_line_is_cut_so_the_next_record_is_not_lost(tmp_path):
    site = Site(tmp_path)
    site.start()
    try:
        site.ship(10)
        assert site.forwarder.terminate() == 0
        journals = sorted(site.registry.glob("journal-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        with open(journals[-1], "ab") as journal:
            journal.write(b'1badc0de {"seq": 999, "set": {"filestream::app::')  # a write cut by a power loss

        site.start()
        site.started()
        site.ship(10)
        end_offset = site.source.stat().st_size
        wait_until(lambda: b'"offset":%d' % end_offset in journals[-1].read_bytes(), 30,
                   "the cursor of line 19 in the journal")
        site.forwarder.kill_hard()

        site.start()
        site.started()
        site.ship(1)
        assert site.forwarder.terminate() == 0
    finally:
        site.forwarder.stop()
    messages = [line.get("message", "") for line in site.forwarder.log_lines()]
    assert len([m for m in messages if "is a torn write" in m and "cutting it off" in m]) == 1
    assert not [m for m in messages if "skipping corrupt line" in m]
    assert set(site.shipped().values()) == {1}, "lines 10..19 were sent twice: their cursor was glued to the torn line"


def test_every_corrupted_snapshot_is_kept(tmp_path):
    site = Site(tmp_path)
    site.start()
    try:
        site.ship(10)
        assert site.forwarder.terminate() == 0
        for damage in (b"\0" * 64, b'{"seq": '):
            newest = max(site.registry.glob("snapshot-*.json"), key=lambda p: int(p.stem.split("-")[1]))
            newest.write_bytes(damage)
            site.start()
            site.started()
            assert site.forwarder.terminate() == 0
        site.start()
        site.started()
        site.ship(1)
        assert site.forwarder.terminate() == 0
    finally:
        site.forwarder.stop()
    kept = sorted(path.read_bytes() for path in site.registry.glob("*.corrupted"))
    assert kept == sorted([b"\0" * 64, b'{"seq": '])
    assert set(site.shipped().values()) == {1}



LOG_CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{input}"]
    output.file:
      path: ${{path.home}}/events
    logging:
      level: debug
      to_stderr: true
      files.rotateeverybytes: 10MiB
      metrics.period: 10ms
"""


def log_disk_warnings(forwarder: FileLoggingForwarder) -> list[str]:
    return [line for line in forwarder.log_path.read_text().splitlines() if line.startswith("warning: cannot write")]


def test_full_log_disk_is_one_warning_not_a_traceback_per_line_and_logging_resumes(tmp_path):
    (tmp_path / "input").mkdir()
    forwarder = FileLoggingForwarder(tmp_path, LOG_CONFIG.format(input=tmp_path / "input" / "app.log"))
    with small_filesystem(tmp_path / "logs", size="256k") as logs:
        forwarder.start()
        try:
            log_file = logs / "forwarder"
            wait_until(lambda: log_file.exists() and log_file.stat().st_size > 0, 30, "the first log lines")
            filler = fill_filesystem(logs)
            wait_until(lambda: log_disk_warnings(forwarder), 60, "the full log disk reported")
            size_when_full = log_file.stat().st_size

            filler.unlink()
            wait_until(lambda: log_file.stat().st_size > size_when_full + 4096, 60, "log lines written again")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    stderr = forwarder.log_path.read_text()
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    warnings = log_disk_warnings(forwarder)
    assert len(warnings) == 1, stderr[-3000:]
    assert str(logs / "forwarder") in warnings[0] and "free space" in warnings[0]


OUTPUT_CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{input}"]
        prospector.scanner.check_interval: 0.1s
    output.file:
      path: {output}
    logging.to_stderr: true
    logging.metrics.enabled: false
"""


class OutputSite:
    """A forwarder whose output.file directory the test breaks, with ten lines waiting to be shipped."""

    def __init__(self, home: Path, output: Path) -> None:
        self.output = output
        source = home / "input" / "app.log"
        source.parent.mkdir(parents=True)
        source.write_text("".join(f"line {n}\n" for n in range(10)))
        self.forwarder = FileLoggingForwarder(home, OUTPUT_CONFIG.format(input=source, output=output))

    def start_and_fail(self) -> str:
        """Starts, expects exit 1, and returns the one error line of that start."""
        offset = self.forwarder.log_path.stat().st_size if self.forwarder.log_path.exists() else 0
        self.forwarder.start()
        assert self.forwarder.process.wait(timeout=60) == 1
        stderr = self.forwarder.log_path.read_bytes()[offset:].decode(errors="replace")
        assert "Traceback" not in stderr, stderr[-3000:]
        lines = error_lines(stderr)
        assert len(lines) == 1, stderr[-3000:]
        return lines[0]

    def shipped_once_after_the_fix(self) -> None:
        """Nothing was acknowledged while the output could not start: every line arrives, once."""
        self.forwarder.start()
        try:
            wait_until(lambda: len(self.messages()) >= 10, 30, "10 events in the output")
            assert self.forwarder.terminate() == 0
        finally:
            self.forwarder.stop()
        assert sorted(self.messages()) == sorted(f"line {n}" for n in range(10))

    def messages(self) -> list[str]:
        return [json.loads(raw)["message"] for path in self.output.glob("*.ndjson")
                for raw in path.read_text().splitlines()]


def test_output_directory_on_a_read_only_mount_is_one_line_and_exit_1(tmp_path):
    mount = tmp_path / "mnt"
    mount.mkdir()
    site = OutputSite(tmp_path, mount / "events")
    with read_only(mount):
        line = site.start_and_fail()
    assert f"cannot create directory {mount / 'events'}" in line
    assert "read-only" in line and "output.file.path" in line, line
    site.shipped_once_after_the_fix()


def test_output_directory_under_a_file_is_one_line_naming_the_file_and_exit_1(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output directory's parent should be\n")
    site = OutputSite(tmp_path, blocker / "events")
    line = site.start_and_fail()
    assert f"cannot create directory {blocker / 'events'}" in line
    assert f"{blocker} is a file, not a directory" in line and "output.file.path" in line, line
    blocker.unlink()
    site.shipped_once_after_the_fix()


def test_output_path_that_is_a_file_is_one_line_and_exit_1(tmp_path):
    output = tmp_path / "events"
    output.write_text("a file where the output directory should be\n")
    site = OutputSite(tmp_path, output)
    line = site.start_and_fail()
    assert f"{output} is a file, not a directory" in line and "output.file.path" in line, line
    output.unlink()
    site.shipped_once_after_the_fix()


def test_output_directory_that_cannot_be_rotated_at_start_is_one_line_and_exit_1(tmp_path):
    output = tmp_path / "events"
    output.mkdir()
    (output / "forwarder.ndjson").write_text('{"message": "from an earlier run"}\n')
    site = OutputSite(tmp_path, output)
    with read_only(output):
        line = site.start_and_fail()
    assert f"cannot rotate the files in {output}" in line and "read-only" in line, line
    (output / "forwarder.ndjson").unlink()
    site.shipped_once_after_the_fix()
