"""The rotated log files under `${path.logs}`: each one owner-only, and a failing log disk reported in one line.

The standard RotatingFileHandler opens every new file with `open()`, so each
file after the first rotation got the umask's 0644 whatever
`logging.files.permissions` said. Here every file is created with the
configured mode.

When the log disk is full or read-only, the standard handler prints a
traceback to stderr for every record. Here a refused write is reported as
one stderr line at most once a minute, with the number of log lines that
could not be written; the file is reopened at the next record, so logging
resumes by itself once there is room again.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

from forwarder.config.settings import LoggingSettings
from forwarder.disk import OwnedDirectory, disk_problem, make_private_directory

REPORT_INTERVAL = 60.0


class LogFileError(Exception):
    """The log directory or the log file cannot be created."""


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    def __init__(self, path: Path, max_bytes: int, backup_count: int, file_mode: int) -> None:
        self.file_mode = file_mode
        self._not_written = 0
        self._last_report: float | None = None
        super().__init__(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")

    def _open(self) -> TextIO:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode)
        try:
            return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)
        except BaseException:
            os.close(fd)
            raise

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        self._drop_stream()
        self._not_written += 1
        now = time.monotonic()
        if self._last_report is not None and now - self._last_report < REPORT_INTERVAL:
            return
        self._last_report = now
        print(f"warning: {disk_problem(error, self.baseFilename, 'path.logs')}; "
              f"{self._not_written} log line(s) not written", file=sys.stderr, flush=True)
        self._not_written = 0

    def _drop_stream(self) -> None:
        """Discards what the failed write left buffered; the next record reopens the file."""
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def rotating_log_file(settings: LoggingSettings) -> PrivateRotatingFileHandler:
    directory = Path(settings.files_path)
    try:
        make_private_directory(directory)
        return PrivateRotatingFileHandler(directory / settings.files_name, settings.rotate_every_bytes,
                                          settings.keepfiles - 1, settings.permissions)
    except OSError as exc:
        raise LogFileError(disk_problem(exc, directory, "path.logs")) from None


def owned_log_directory(settings: LoggingSettings) -> OwnedDirectory:
    """The log directory and its log files (`NAME`, `NAME.1`, …), for tightening what an earlier version left open."""
    return OwnedDirectory(Path(settings.files_path), re.compile(re.escape(settings.files_name) + r"(\.\d+)?"),
                          settings.permissions)
