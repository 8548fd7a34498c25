"""`forwarder export`: one time range of one fileset, read from Microsoft Graph and written once.

The export shares everything with a running forwarder except the delivery
machinery: the same settings and credentials, the same Graph client with its
request budget and throttling policy, the same record→event conversion and
pipeline additions. It has no cursor and no registry, so it can run next to a
forwarder on the same host, and the range it reads is exactly [since, until)
on each fileset's time field (the cursor field of the module's fileset table).

Exit status: 0 complete; 1 a problem the user must fix (config, credentials,
permission, licence, output file) or the source stayed unreachable; 130
interrupted with Ctrl-C. The last line on stderr always says how far it got.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, BinaryIO

from forwarder.config.settings import CliOptions
from forwarder.export.arguments import ExportRequest, ExportUsageError, export_request, format_moment
from forwarder.export.csv_columns import COLUMNS
from forwarder.export.progress import ExportProgress, ProgressLogHandler, counted
from forwarder.export.shipped_events import ShippedEvents
from forwarder.export.source import ExportSource, load_export_source
from forwarder.export.writers import CsvWriter, ExportFile, NdjsonWriter, RecordWriter
from forwarder.inputs.graph import connect_graph, record_time
from forwarder.inputs.graph_config import streams
from forwarder.logs import SecretRedactor
from forwarder.modules.entraid import FILESETS
from forwarder.net.graph_client import GraphClient, GraphPermanentError
from forwarder.net.http_client import RetriesExhausted, StopRequested
from forwarder.net.tokens import CredentialError

# A one-shot command gives up on an unreachable source (a few minutes of backoff) instead of waiting forever.
MAX_ATTEMPTS = 12
EXIT_INTERRUPTED = 130
log = logging.getLogger("forwarder.export")


def run_export(options: CliOptions, args: argparse.Namespace) -> int:
    """Runs `forwarder export …`; ConfigError and KeystoreError are left to the CLI, which prints them."""
    try:
        request = export_request(args, tuple(FILESETS), time.time())
    except ExportUsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        source = load_export_source(options, request.module, request.fileset)
    except KeyboardInterrupt:
        print("export interrupted before it started: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return Export(request, source, debug=hasattr(args, "debug_selectors")).run()


class Export:
    def __init__(self, request: ExportRequest, source: ExportSource, debug: bool = False) -> None:
        self.request = request
        self.source = source
        self.debug = debug
        self.stop = threading.Event()
        self.target = ExportFile(request.output_path)

    def run(self) -> int:
        try:
            out = self.target.open()
        except OSError as error:
            print(f"error: cannot write {self.target.partial}: {error.strerror}", file=sys.stderr)
            return 1
        try:
            graph = connect_graph(self.source.config, self.stop, log, MAX_ATTEMPTS)
        except CredentialError as error:
            self.target.abandon(keep=False)
            print(f"error: {self._redact(error.message)}", file=sys.stderr)
            return 1
        progress = ExportProgress(sys.stderr, self.request.since, self.request.until, graph.http.stats)
        handler = ProgressLogHandler(progress, logging.DEBUG if self.debug else logging.WARNING)
        handler.addFilter(SecretRedactor(self.source.secrets))
        root = logging.getLogger()
        previous_level = root.level
        root.addHandler(handler)
        root.setLevel(handler.level)
        previous_handler = signal.signal(signal.SIGINT, self._interrupt)
        progress.start()
        try:
            return self._export(graph, out, progress)
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            root.removeHandler(handler)
            root.setLevel(previous_level)
            graph.http.close()

    def _export(self, graph: GraphClient, out: BinaryIO, progress: ExportProgress) -> int:
        writer: RecordWriter
        try:
            if self.request.output_format == "csv":
                writer = CsvWriter(out, COLUMNS[self.request.fileset])
            else:
                writer = NdjsonWriter(out, ShippedEvents(self.source))
            self._read_all(graph, writer, progress)
            self.target.complete()
        except (StopRequested, KeyboardInterrupt):
            self.target.abandon(keep=progress.written > 0)
            where = f"{self._reach(progress)}{self._leftover(progress)}"
            progress.finish(f"export interrupted: {progress.summary()}; {where}")
            return EXIT_INTERRUPTED
        except (CredentialError, GraphPermanentError) as error:
            return self._fail(progress, error.message)
        except RetriesExhausted as error:
            return self._fail(progress, str(error))
        except BrokenPipeError:
            # Whatever is still buffered for the closed pipe must not fail again when Python exits.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return self._fail(progress, "standard output was closed before the export finished")
        except OSError as error:
            return self._fail(progress, f"cannot write {self.target.partial or 'standard output'}: {error.strerror}")
        progress.finish(f"export finished: {progress.summary()}; {self._written(progress)} to {self.target.shown_name}")
        return 0

    def _read_all(self, graph: GraphClient, writer: RecordWriter, progress: ExportProgress) -> None:
        """Every stream of the fileset, newest page first; records outside [since, until) are left out."""
        config, since, until = self.source.config, self.request.since, self.request.until
        names = streams(config)
        for index, stream in enumerate(names):
            progress.begin_stream(stream, index, len(names))
            sign_in_types = config.sign_in_types if stream == "signinlogs" else None
            for page in graph.pages(stream, since, until, config.page_size, sign_in_types):
                kept = written = 0
                oldest: float | None = None
                for record in page:
                    if not isinstance(record, dict):
                        continue
                    when = record_time(record, stream)
                    if when is not None:
                        if not since <= when < until:
                            continue
                        oldest = when if oldest is None else min(oldest, when)
                    kept += 1
                    written += writer.write(record, stream)
                progress.page(kept, written, oldest)
                if self.stop.is_set():
                    raise StopRequested()

    def _interrupt(self, _signum: int, _frame: Any) -> None:
        """First Ctrl-C: stop after the current request; a second one stops at once."""
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def _fail(self, progress: ExportProgress, message: str) -> int:
        self.target.abandon(keep=progress.written > 0)
        detail = f" ({progress.summary()}{self._leftover(progress)})" if progress.records else ""
        progress.finish(f"error: {self._redact(message)}{detail}")
        return 1

    def _reach(self, progress: ExportProgress) -> str:
        request = self.request
        window = f"[{format_moment(request.since)}, {format_moment(request.until)})"
        if progress.reached is None:
            return f"{progress.stream_name or request.fileset}: no record of {window} read yet"
        return (f"{progress.stream_name} read from {format_moment(request.until)} back to "
                f"{format_moment(progress.reached)} of {window} (newest first)")

    def _leftover(self, progress: ExportProgress) -> str:
        if self.target.partial is None:
            return ""
        if progress.written:
            return f"; the incomplete output is in {self.target.partial}"
        return ""

    def _written(self, progress: ExportProgress) -> str:
        dropped = progress.records - progress.written
        suffix = f" ({dropped:,} dropped by processors)" if dropped else ""
        unit = "event" if self.request.output_format == "ndjson" else "row"
        return f"{counted(progress.written, unit)} written{suffix}"

    def _redact(self, text: str) -> str:
        for secret in sorted((s for s in self.source.secrets if s), key=len, reverse=True):
            text = text.replace(secret, "[REDACTED]")
        return text
