"""Runs the real `forwarder` command in a child process, the way a service manager would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


class ForwarderProcess:
    def __init__(self, home: Path, config: str) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path = self.home / "forwarder.yml"
        self.config_path.write_text(textwrap.dedent(config))
        os.chmod(self.config_path, 0o600)
        self.log_path = self.home / "stderr.log"
        self.process: subprocess.Popen | None = None
        self._starts_before = 0

    def start(self, *extra_args: str) -> ForwarderProcess:
        self._starts_before = self._starts_logged() if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forwarder", "-e", "-c", str(self.config_path), "--path.home", str(self.home),
                 *extra_args],
                cwd=self.home, stdout=log, stderr=log)
        return self

    def kill_hard(self) -> None:
        """SIGKILL: no cleanup, no registry flush, exactly like a power cut of the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM once the forwarder runs (before its handler is installed, SIGTERM kills it as for any process)."""
        deadline = time.monotonic() + 30
        while self.alive() and self._starts_logged() <= self._starts_before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _starts_logged(self) -> int:
        return sum("forwarder started" in line.get("message", "") for line in self.log_lines())

    def log_lines(self) -> list[dict]:
        """The JSON log lines written so far (non-JSON lines are returned as {"raw": line})."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"raw": raw})
        return lines

    def wait_for_log(self, text: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if text in line.get("message", line.get("raw", "")):
                    return line
            if not self.alive():
                raise AssertionError(f"forwarder exited ({self.process.returncode}) before logging {text!r}:\n"
                                     + self.log_path.read_text()[-3000:])
            time.sleep(0.05)
        raise AssertionError(f"no log line containing {text!r} within {timeout}s:\n"
                             + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.alive():
            self.kill_hard()


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def output_events(home: Path) -> list[dict]:
    """Every event in the output files; a line torn by kill -9 was never acknowledged, so it is skipped."""
    for _ in range(10):
        try:
            return _read_output_files(home)
        except FileNotFoundError:
            continue  # a file was rotated between listing and reading; list again
    raise AssertionError("output files keep rotating under the reader")


def _read_output_files(home: Path) -> list[dict]:
    events = []
    for path in sorted((home / "data" / "events").glob("*.ndjson")):
        for line in path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events
