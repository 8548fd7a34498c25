"""One forwarder per data path, and the error for what outside the config prevents a start.

A module of its own so that the sub-commands that write the registry outside
a run (`import-registry`) take the same lock as `run` without importing it.
"""

from __future__ import annotations

import os
from pathlib import Path

from forwarder.disk import FILE_MODE, disk_problem, make_private_directory
from forwarder.platform import current_platform


class StartupError(Exception):
    """Something outside the config prevents starting (lock held, data path unwritable)."""


class DataDirectoryLock:
    """One forwarder per data path: two writing the same registry would corrupt each other's cursors."""

    def __init__(self, data_path: Path) -> None:
        self.path = Path(data_path) / "forwarder.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            make_private_directory(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise StartupError(disk_problem(exc, self.path.parent, "path.data")) from None
        if not current_platform().try_lock_exclusive(self._fd):
            os.close(self._fd)
            self._fd = None
            raise StartupError(f"data path {self.path.parent} is in use by another forwarder "
                               "(give each instance its own --path.data)") from None
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, str(os.getpid()).encode())
        except OSError as exc:
            self.release()
            raise StartupError(disk_problem(exc, self.path, "path.data")) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
