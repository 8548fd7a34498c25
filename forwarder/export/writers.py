"""Where exported records go and in which shape: NDJSON events or CSV rows, to stdout or a file.

A file is written as FILE.partial and renamed to FILE only when the export
completes, so an interrupted or failed export can never be mistaken for a
whole one.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from forwarder.export.csv_columns import Column, row
from forwarder.export.shipped_events import ShippedEvents


class RecordWriter(Protocol):
    def write(self, record: dict[str, Any], stream: str) -> bool:
        """Writes one record; False when it was left out (a processor dropped its event)."""
        ...


class ExportFile:
    """stdout, or FILE written through FILE.partial."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial") if path is not None else None
        self._handle: BinaryIO | None = None

    @property
    def shown_name(self) -> str:
        return "standard output" if self.path is None else str(self.path)

    def open(self) -> BinaryIO:
        """Raises OSError when the file cannot be created."""
        if self.partial is None:
            self._handle = sys.stdout.buffer
        else:
            self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed by complete() or abandon()
        return self._handle

    def complete(self) -> None:
        """Everything is written: flush, and give the file its final name."""
        handle = self._handle
        if handle is None:
            return
        handle.flush()
        if self.partial is not None and self.path is not None:
            os.fsync(handle.fileno())
            handle.close()
            os.replace(self.partial, self.path)
        self._handle = None

    def abandon(self, keep: bool) -> None:
        """The export stopped early: FILE.partial stays when it holds records, FILE is never created."""
        handle = self._handle
        self._handle = None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.flush()
        if self.partial is None:
            return
        handle.close()
        if not keep:
            self.partial.unlink(missing_ok=True)


class NdjsonWriter:
    """One line per record: the event `forwarder run` would ship for it."""

    def __init__(self, out: BinaryIO, events: ShippedEvents) -> None:
        self._out = out
        self._events = events

    def write(self, record: dict[str, Any], stream: str) -> bool:
        line = self._events.encode(record, stream)
        if line is None:
            return False
        self._out.write(line)
        return True


class CsvWriter:
    """A header row, then one row per record, UTF-8 with CRLF line ends as spreadsheets expect."""

    def __init__(self, out: BinaryIO, columns: list[Column]) -> None:
        self._columns = columns
        self._csv = csv.writer(_Utf8(out))
        self._csv.writerow([column.header for column in columns])

    def write(self, record: dict[str, Any], stream: str) -> bool:
        self._csv.writerow(row(record, stream, self._columns))
        return True


class _Utf8:
    """csv writes text; the output is bytes (stdout's buffer or a file opened in binary)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(text.encode("utf-8"))
