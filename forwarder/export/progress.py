"""How far an export got, on stderr: a redrawn bar on a terminal, a plain line now and then elsewhere.

Pages arrive newest first, so the oldest record time read so far, against the
requested range, says how much is done. A ticker thread redraws (a few times a
second on a terminal, every few seconds in a log), so a long throttling wait
still shows that the export is alive and why it is slow: the HTTP client's
counters of 429/503 waits are part of every line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

from forwarder.export.arguments import format_moment
from forwarder.net.http_client import HttpStats

TERMINAL_REDRAW = 0.25
LOG_LINE_INTERVAL = 5.0
BAR_WIDTH = 20


class ExportProgress:
    def __init__(
        self,
        stream: TextIO,
        since: float,
        until: float,
        http_stats: HttpStats,
        line_interval: float = LOG_LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._since = since
        self._until = min(until, time.time())
        self._http = http_stats
        self._line_interval = line_interval
        self._clock = clock
        self._terminal = _is_terminal(stream)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = clock()
        self._last_line = self._started
        self._drawn = False
        self.records = 0
        self.pages = 0
        self.written = 0
        self.stream_name = ""
        self._stream_index = 0
        self._stream_count = 1
        self.reached: float | None = None

    def start(self) -> None:
        self._ticker = threading.Thread(target=self._tick, name="export-progress", daemon=True)
        self._ticker.start()

    def begin_stream(self, name: str, index: int, count: int) -> None:
        with self._lock:
            self.stream_name, self._stream_index, self._stream_count = name, index, count
            self.reached = None

    def page(self, records: int, written: int, oldest: float | None) -> None:
        """One page done: `records` read, `written` of them output, `oldest` its earliest record time."""
        with self._lock:
            self.pages += 1
            self.records += records
            self.written += written
            if oldest is not None and (self.reached is None or oldest < self.reached):
                self.reached = oldest

    def note(self, text: str) -> None:
        """A message line that must not be mixed into the bar (warnings while exporting)."""
        with self._lock:
            self._clear()
            self._write(text + "\n")
            self._drawn = False

    def finish(self, summary: str) -> None:
        """Stops redrawing and leaves the bar's last state and `summary` on their own lines."""
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        with self._lock:
            if self._drawn:
                self._write("\n")
                self._drawn = False
            self._write(summary + "\n")

    def summary(self) -> str:
        """"N records from M pages in T s (R records/s), W throttling waits (S s)"."""
        with self._lock:
            elapsed = max(self._clock() - self._started, 1e-6)
            return (f"{counted(self.records, 'record')} from {counted(self.pages, 'page')} in {elapsed:.1f} s "
                    f"({self.records / elapsed:,.0f} records/s), {self._waits()}")

    def _tick(self) -> None:
        while not self._stopped.wait(TERMINAL_REDRAW):
            with self._lock:
                if self._terminal:
                    self._clear()
                    self._write(self._bar())
                    self._drawn = True
                elif self._clock() - self._last_line >= self._line_interval:
                    self._last_line = self._clock()
                    self._write(f"export: {self._status()}\n")

    def _bar(self) -> str:
        done = self._fraction()
        filled = round(done * BAR_WIDTH)
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self._status()}"
        width = _terminal_width(self._stream)
        return line[: width - 1] if width else line

    def _status(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-6)
        where = f", reached {format_moment(self.reached)}" if self.reached is not None else ""
        return (f"{self.stream_name} {self._fraction():.0%}: {counted(self.records, 'record')}, "
                f"{counted(self.pages, 'page')}, "
                f"{self.records / elapsed:,.0f} records/s, {self._waits()}{where}")

    def _waits(self) -> str:
        return f"{counted(self._http.throttled, 'throttling wait')} ({self._http.throttled_seconds:.0f} s)"

    def _fraction(self) -> float:
        """Streams are read one after the other, each from `until` back to `since`."""
        span = max(self._until - self._since, 1e-6)
        within = 0.0 if self.reached is None else min(1.0, max(0.0, (self._until - self.reached) / span))
        return min(1.0, (self._stream_index + within) / max(self._stream_count, 1))

    def _clear(self) -> None:
        if self._drawn:
            self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed: the export itself goes on


class ProgressLogHandler(logging.Handler):
    """Log records as plain lines between redraws of the bar."""

    def __init__(self, progress: ExportProgress, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._progress.note(f"{record.levelname.lower()}: {self.format(record)}")
        except Exception:
            self.handleError(record)


def counted(number: int, noun: str) -> str:
    """"1 page", "1,200 pages"."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
