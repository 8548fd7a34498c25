"""Real filesystems for disk-failure tests: a small tmpfs that fills up, a read-only bind mount.

Mounting needs root (CI runs the suite as root); without it the tests that need a
mount are skipped with the reason. Root ignores directory modes, so "read-only" is
made with a read-only bind mount, exactly what the kernel reports to any user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.forwarder_process import ForwarderProcess


class FileLoggingForwarder(ForwarderProcess):
    """The forwarder without `-e`: it logs to `${path.logs}` (and to stderr if the config says `logging.to_stderr`)."""

    def start(self, *extra_args: str) -> FileLoggingForwarder:
        self._starts_before = self._starts_logged() if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forwarder", "-c", str(self.config_path), "--path.home", str(self.home),
                 *extra_args],
                cwd=self.home, stdout=log, stderr=log)
        return self


def _mount(*arguments: str) -> None:
    result = subprocess.run(["mount", *arguments], capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root and mount permission): {result.stderr.strip()}")


def _unmount(directory: Path) -> None:
    subprocess.run(["umount", "--lazy", str(directory)], capture_output=True, check=False, timeout=30)


@contextlib.contextmanager
def small_filesystem(directory: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `directory` (created), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root")
    directory.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(directory))
    try:
        yield directory
    finally:
        _unmount(directory)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """`directory` bind-mounted read-only on itself: writes fail with EROFS even for root."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    _mount("--bind", str(directory), str(directory))
    try:
        _mount("-o", "remount,bind,ro", str(directory))
        yield directory
    finally:
        _unmount(directory)


def fill_filesystem(directory: Path) -> Path:
    """Writes a filler file in `directory` until the filesystem refuses (ENOSPC); returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        block = b"\0" * 65536
        while True:
            try:
                handle.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        while True:  # the last partial block
            try:
                handle.write(b"\0")
            except OSError:
                return filler


def error_lines(stderr_text: str) -> list[str]:
    """The plain one-line messages meant for the operator (log lines are JSON objects)."""
    return [line for line in stderr_text.splitlines() if line.startswith("error:")]
