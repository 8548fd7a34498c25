"""Switching a host from Filebeat to the forwarder: Filebeat's registry carried over, nothing re-shipped.

A writer appends to log files while "Filebeat" (a memlog registry written the
way Filebeat writes it) records how far it shipped; Filebeat stops, the
forwarder starts as a real process on the same files and data path, and its
output must hold exactly the lines after Filebeat's offsets: none twice, none
missing. A damaged Filebeat registry imports nothing, in one line, and the
forwarder still starts.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from tests.fixtures.filebeat_registry.filebeat_memlog import FilebeatMemlog
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{logs}/app*.log"]
        prospector.scanner.check_interval: 0.1s
      - type: filestream
        id: audit
        paths: ["{logs}/audit.log"]
        prospector.scanner.check_interval: 0.1s
      - type: log
        paths: ["{logs}/legacy.log"]
        scan_frequency: 0.1s
    forwarder.registry.flush: 0s
    output.file:
      path: ${{path.data}}/events
    logging.metrics.enabled: false
"""


class LogWriter:
    """Appends numbered lines to files from a thread; knows at any moment how many bytes each file holds."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.lock = threading.Lock()
        self.lines: dict[Path, list[str]] = {path: [] for path in paths}
        self.sizes = dict.fromkeys(paths, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def write_batch(self, count: int) -> None:
        with self.lock:
            for path in self.paths:
                for _ in range(count):
                    # Past 1024 bytes soon, so the fingerprint identity (first 1024 bytes) exists.
                    line = f"{path.name} line {len(self.lines[path]):06d} " + "x" * 40
                    with open(path, "a") as handle:
                        handle.write(line + "\n")
                    self.lines[path].append(line)
                    self.sizes[path] += len(line) + 1

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.write_batch(3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def shipped_by_filebeat(self) -> dict[Path, tuple[int, int]]:
        """(byte offset, line count) of each file at this instant: what Filebeat had acknowledged."""
        with self.lock:
            return {path: (self.sizes[path], len(self.lines[path])) for path in self.paths}


def messages(home: Path) -> list[str]:
    return [event["message"] for event in output_events(home)]


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture
def site(tmp_path):
    home = tmp_path / "site"
    logs = tmp_path / "logs"
    logs.mkdir()
    forwarder = ForwarderProcess(home, CONFIG.format(logs=logs))
    yield home, logs, forwarder
    forwarder.stop()


def filebeat_history(store: FilebeatMemlog, files: dict[str, Path], shipped: dict[Path, tuple[int, int]],
                     earlier: dict[Path, tuple[int, int]], gone: Path) -> None:
    """Filebeat's registry over a run: earlier offsets, a checkpoint, a state removed, the final offsets."""
    store.filestream("app", files["app"], None)
    store.filestream("app", files["app"], earlier[files["app"]][0])
    store.log_input(files["legacy"], earlier[files["legacy"]][0])
    store.filestream("app", gone, 10)
    store.checkpoint()
    fingerprint = hashlib.sha256(files["audit"].read_bytes()[:1024]).hexdigest()
    store.filestream("audit", files["audit"], shipped[files["audit"]][0], identity=f"fingerprint::{fingerprint}")
    store.remove(f"filestream::app::native::{gone.stat().st_ino}-{gone.stat().st_dev}")
    store.filestream("app", files["app"], shipped[files["app"]][0])
    store.log_input(files["legacy"], shipped[files["legacy"]][0])


def test_cut_over_from_filebeat_sends_no_line_twice_and_skips_none(site):
    home, logs, forwarder = site
    files = {name: logs / f"{name}.log" for name in ("app", "audit", "legacy")}
    gone = logs / "app-old.log"
    gone.write_text("rotated away\n")
    writer = LogWriter(list(files.values()))
    writer.write_batch(30)
    earlier = writer.shipped_by_filebeat()
    writer.start()
    wait_until(lambda: writer.shipped_by_filebeat()[files["app"]][1] > 60, 10, "the writer to go on")
    shipped = writer.shipped_by_filebeat()
    store = FilebeatMemlog(home / "data" / "registry" / "filebeat")
    filebeat_history(store, files, shipped, earlier, gone)
    gone.unlink()
    before = digest(store.directory)

    forwarder.start()
    line = forwarder.wait_for_log("imported 3 position(s) from Filebeat's registry")
    assert "from offset" in line["message"]
    wait_until(lambda: len(messages(home)) > 30, 30, "the forwarder to ship the lines written since")
    writer.stop()
    expected = [line for path in files.values() for line in writer.lines[path][shipped[path][1]:]]
    wait_until(lambda: len(messages(home)) >= len(expected), 60, "every line written since Filebeat stopped")
    assert forwarder.terminate() == 0
    shipped_lines = messages(home)
    assert sorted(shipped_lines) == sorted(expected)
    assert len(set(shipped_lines)) == len(shipped_lines)
    assert digest(store.directory) == before, "Filebeat's registry files must not change"
