"""The `filestream` input: follows the log files matched by globs, across rotation and truncation.

One thread does all the work. Every `prospector.scanner.check_interval` it
scans the globs and reconciles what it finds with the files it tracks, keyed
by device and inode, so a renamed file keeps its place and is never read
twice. Between scans it tails the open files, runs the parsers and publishes
each record with the cursor of its file. A single thread keeps the events of
one file in file order, which the committed cursor relies on.

The deprecated `log` input runs on this same class (see log_input.py).
"""

from __future__ import annotations

import glob
import os
import stat as stat_module
import time
from dataclasses import dataclass
from typing import Any

from forwarder.inputs.base import InputContext, InputType
from forwarder.inputs.file_events import (
    FileContext,
    build_file_event,
    build_line_event,
    file_payload,
    split_parsers,
)
from forwarder.inputs.file_reader import (
    FilePosition,
    FileReader,
    FileRewritten,
    IdentityChanged,
    RawLine,
    file_identity,
)
from forwarder.inputs.filestream_config import FilestreamConfig, default_id, parse_config
from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import ParserChain, build_chain

# Bytes read from one file per round, so one busy file cannot starve the others.
READ_BUDGET = 256 * 1024
# Records handed to the pipeline (and to a worker process) at once.
PUBLISH_CHUNK = 512
# Longest sleep between looks at the open files and at the stop flag.
IDLE_WAIT = 0.2
COUNTERS = ("files_opened", "files_closed", "files_truncated", "files_renamed", "files_removed")


@dataclass
class TrackedFile:
    identity: str
    path: str
    device: int
    inode: int
    # Where a reopen resumes; valid while `reader` is None.
    position: FilePosition
    parsers: ParserChain
    # Bytes read when the file was last closed: it is reopened once it grows past them.
    read_size: int = 0
    reader: FileReader | None = None
    last_activity: float = 0.0
    renamed: bool = False
    open_failed: bool = False


class FilestreamInput:
    """Follows the files of one input; `type_name` is how its log lines name it (`filestream` or `log`)."""

    def __init__(self, config: FilestreamConfig, context: InputContext, type_name: str = "filestream") -> None:
        self._config = config
        self._context = context
        self._log = context.log
        self._name = f"{type_name} {context.input_id}"
        self._files: dict[str, TrackedFile] = {}
        self._committed: dict[str, Any] = {}
        # Registry entries to delete, sent along with the next published event.
        self._removals: dict[str, None] = {}
        self._lines_filtered = bool(config.include_lines or config.exclude_lines)
        self._parsers, self._ndjson_stages = split_parsers(config.parsers, self._lines_filtered)
        # Lines go to the pipeline as read (decoded in the worker processes) when nothing here needs their text.
        self._raw_lines = not self._parsers and not self._lines_filtered
        for name in ("files_open", "files_seen", *COUNTERS):
            context.stats.extra.setdefault(name, 0)

    def run(self) -> None:
        self._committed = self._context.client.committed()
        try:
            self._follow()
        finally:
            for tracked in self._files.values():
                if tracked.reader is not None:
                    tracked.reader.close()
                    tracked.reader = None
            self._update_stats()

    def _follow(self) -> None:
        stop = self._context.stop
        next_scan = 0.0
        first_scan = True
        while not stop.is_set():
            if time.monotonic() >= next_scan:
                self._scan(first_scan)
                first_scan = False
                next_scan = time.monotonic() + self._config.check_interval
            busy = False
            for tracked in self._open_files():
                progress = self._harvest(tracked)
                if progress is None:
                    return
                busy = busy or progress
            now = time.monotonic()
            deadlines = [d for d in (t.parsers.deadline() for t in self._open_files()) if d is not None]
            if any(d <= now for d in deadlines) and not self._expire_multiline(now):
                return
            if not busy and self._context.once:
                if not self._read_to_the_end_once():
                    return
                continue
            if not busy:
                wake = min([next_scan, now + IDLE_WAIT, *deadlines])
                stop.wait(max(0.0, wake - now))

    def _read_to_the_end_once(self) -> bool:
        """`--once`: closes the files read to the end and scans again; False when nothing is left to read.

        Closing frees the harvester_limit slots, so the next scan opens the files still waiting, and
        publishes what a multiline parser holds; a file that grew since it was read is opened again."""
        if not all(self._close(tracked, "read to the end, --once") for tracked in self._open_files()):
            return False
        self._scan(False)
        return bool(self._open_files())

    def _open_files(self) -> list[TrackedFile]:
        return [t for t in self._files.values() if t.reader is not None]

    # ----- scanning ------------------------------------------------------------

    def _scan(self, first: bool) -> None:
        found = self._find_files()
        wall = time.time()
        for identity, (path, stat) in found.items():
            tracked = self._files.get(identity) or self._track(identity, path, stat)
            if tracked.path != path:
                offset = tracked.reader.position.offset if tracked.reader else tracked.position.offset
                self._log.info("%s: %s was renamed to %s; reading on at offset %d",
                               self._name, tracked.path, path, offset)
                tracked.path = path
                tracked.renamed = True
                self._count("files_renamed")
            if tracked.reader is None:
                self._open(tracked, stat, wall)
        for identity, tracked in list(self._files.items()):
            if identity in found:
                continue
            if tracked.reader is not None:
                # Moved out of the globs but still on disk: a rename as far as closing goes.
                tracked.renamed = tracked.renamed or tracked.reader.links > 0
                continue
            del self._files[identity]
            self._count("files_removed")
            self._log.debug("%s: %s is gone; forgetting it", self._name, tracked.path)
            if self._config.clean_removed:
                self._removals[identity] = None
        if first and self._config.clean_removed:
            # Saved positions of files that no longer exist: the files they described are gone.
            self._removals.update(dict.fromkeys(self._committed))
            self._committed.clear()
        if self._removals:
            # Deleted once everything read before is acknowledged, without waiting for a next event.
            self._context.client.commit(dict(self._removals))
            self._removals = {}
        self._update_stats()

    def _find_files(self) -> dict[str, tuple[str, os.stat_result]]:
        found: dict[str, tuple[str, os.stat_result]] = {}
        for pattern in self._config.paths:
            for path in sorted(glob.glob(pattern, recursive=True, include_hidden=True)):
                if self._excluded(path):
                    continue
                try:
                    stat = os.lstat(path)
                    if stat_module.S_ISLNK(stat.st_mode):
                        if not self._config.symlinks:
                            continue
                        stat = os.stat(path)
                except OSError:
                    continue
                if stat_module.S_ISREG(stat.st_mode):
                    found.setdefault(file_identity(stat), (path, stat))
        return found

    def _excluded(self, path: str) -> bool:
        if any(pattern.search(path) for pattern in self._config.exclude_files):
            return True
        include = self._config.include_files
        return bool(include) and not any(pattern.search(path) for pattern in include)

    def _track(self, identity: str, path: str, stat: os.stat_result) -> TrackedFile:
        self._removals.pop(identity, None)
        position = FilePosition()
        saved = self._committed.pop(identity, None)
        if saved is not None:
            try:
                position = FilePosition.from_cursor(saved)
            except ValueError as exc:
                self._log.warning("%s: saved position of %s is unusable (%s); reading from 0", self._name, path, exc)
        parsers = build_chain(self._parsers, self._config.message_max_bytes)
        tracked = TrackedFile(identity, path, stat.st_dev, stat.st_ino, position, parsers, read_size=position.offset)
        self._files[identity] = tracked
        return tracked

    def _open(self, tracked: TrackedFile, stat: os.stat_result, wall: float) -> None:
        config = self._config
        if config.ignore_older and wall - stat.st_mtime > config.ignore_older:
            return
        if tracked.position.offset <= stat.st_size <= tracked.read_size:
            return
        if config.harvester_limit and len(self._open_files()) >= config.harvester_limit:
            return
        try:
            reader = FileReader.open(tracked.path, tracked.identity, tracked.position, config.message_max_bytes)
        except IdentityChanged:
            return
        except OSError as exc:
            if not tracked.open_failed:
                self._log.warning("%s: cannot open %s: %s; will retry", self._name, tracked.path, exc)
                self._context.stats.error(f"cannot open {tracked.path}: {exc}")
            tracked.open_failed = True
            return
        tracked.open_failed = False
        if reader.restarted:
            self._log.info("%s: reading %s again from the start: %s", self._name, tracked.path, reader.restarted)
            self._count("files_truncated")
        else:
            self._log.info("%s: reading %s from offset %d", self._name, tracked.path, reader.position.offset)
        tracked.reader = reader
        tracked.last_activity = time.monotonic()
        self._count("files_opened")

    # ----- reading -------------------------------------------------------------

    def _harvest(self, tracked: TrackedFile) -> bool | None:
        """Reads and publishes what one file has; True if it had data, None when stopping."""
        reader = tracked.reader
        assert reader is not None
        before = reader.bytes_read
        try:
            lines = reader.read_raw_lines(READ_BUDGET) if self._raw_lines else reader.read_lines(READ_BUDGET)
        except FileRewritten as exc:
            if not self._publish_all(tracked, tracked.parsers.flush(time.monotonic())):
                return None
            self._log.info("%s: %s was truncated or rewritten (%s); reading from 0", self._name, tracked.path, exc)
            self._count("files_truncated")
            reader.restart()
            return True
        except OSError as exc:
            self._log.warning("%s: cannot read %s: %s; will reopen it", self._name, tracked.path, exc)
            self._context.stats.error(f"cannot read {tracked.path}: {exc}")
            return False if self._close(tracked, "read error") else None
        now = time.monotonic()
        if reader.bytes_read != before:
            tracked.last_activity = now
        if self._raw_lines:
            published = self._publish_raw_lines(tracked, lines)  # type: ignore[arg-type]
        else:
            records: list[Message] = []
            for line in lines:
                records.extend(tracked.parsers.feed(line, now))  # type: ignore[arg-type]
            published = self._publish_all(tracked, records)
        if not published:
            return None
        if reader.bytes_read != before:
            return True
        reason = self._close_reason(tracked, now)
        if reason is not None and not self._close(tracked, reason):
            return None
        return False

    def _close_reason(self, tracked: TrackedFile, now: float) -> str | None:
        reader = tracked.reader
        assert reader is not None
        if not reader.at_eof:
            return None
        if reader.links == 0 and self._config.close_removed:
            return "removed"
        if tracked.renamed and self._config.close_renamed:
            return "renamed"
        if now - tracked.last_activity >= self._config.close_inactive:
            return "inactive"
        return None

    def _close(self, tracked: TrackedFile, reason: str) -> bool:
        """Publishes what the parsers still hold, then closes; False when stopping."""
        reader = tracked.reader
        assert reader is not None
        published = self._publish_all(tracked, tracked.parsers.flush(time.monotonic()))
        tracked.position = reader.position
        tracked.read_size = reader.bytes_read if reason != "read error" else tracked.position.offset
        reader.close()
        tracked.reader = None
        self._log.info("%s: closed %s (%s) at offset %d", self._name, tracked.path, reason, tracked.position.offset)
        self._count("files_closed")
        self._update_stats()
        return published

    def _expire_multiline(self, now: float) -> bool:
        return all(self._publish_all(tracked, tracked.parsers.expire(now)) for tracked in self._open_files())

    # ----- publishing ----------------------------------------------------------

    def _publish_all(self, tracked: TrackedFile, messages: list[Message]) -> bool:
        """Publishes records read together, each with the position after it; False when the forwarder is stopping.

        Their events are built by `build_file_event`, in a worker process when there are workers, in chunks
        of at most PUBLISH_CHUNK records, well under the queue's bound.
        """
        return all(self._publish_chunk(tracked, messages[start:start + PUBLISH_CHUNK])
                   for start in range(0, len(messages), PUBLISH_CHUNK))

    def _publish_chunk(self, tracked: TrackedFile, messages: list[Message]) -> bool:
        if self._context.stop.is_set():
            return False
        reader = tracked.reader
        assert reader is not None
        payloads: list[tuple[Any, ...]] = []
        cursors: list[dict[str, Any] | None] = []
        last_sent = False
        for message in messages:
            last_sent = not self._lines_filtered or bool((message.content or message.fields)
                                                         and self._wanted(message.content))
            if last_sent:
                payloads.append(file_payload(message))
                cursors.append(self._cursor(tracked, reader, message))
        if not last_sent:
            # The last records were filtered out: their position rides with the last record sent, or alone.
            last = self._cursor(tracked, reader, messages[-1])
            if not payloads:
                self._context.client.commit(last)
                return True
            cursors[-1] = last
        return self._context.client.publish_raw(build_file_event, self._file_context(tracked), payloads, cursors)

    def _publish_raw_lines(self, tracked: TrackedFile, lines: list[RawLine]) -> bool:
        """`_publish_all` for lines as read, when the input has no parser or line filter of its own: each
        line goes undecoded (`build_line_event` decodes it) with the position after it."""
        reader = tracked.reader
        assert reader is not None
        context = self._file_context(tracked)
        publish_raw = self._context.client.publish_raw
        for start in range(0, len(lines), PUBLISH_CHUNK):
            if self._context.stop.is_set():
                return False
            chunk = lines[start:start + PUBLISH_CHUNK]
            payloads = [(data, offset, truncated) for data, offset, _, truncated, _ in chunk]
            cursors = [reader.cursor(tracked.identity, tracked.path, end, skip) for _, _, end, _, skip in chunk]
            if not publish_raw(build_line_event, context, payloads, cursors):
                return False
        return True

    @staticmethod
    def _cursor(tracked: TrackedFile, reader: FileReader, message: Message) -> dict[str, Any]:
        return reader.cursor(tracked.identity, tracked.path, message.end, message.skip_to_newline)

    def _wanted(self, content: str) -> bool:
        if self._config.include_lines and not any(p.search(content) for p in self._config.include_lines):
            return False
        return not any(p.search(content) for p in self._config.exclude_lines)

    def _file_context(self, tracked: TrackedFile) -> FileContext:
        generation = tracked.reader.generation if tracked.reader else 0
        prefix = tracked.identity if not generation else f"{tracked.identity}-{generation}"
        return tracked.path, str(tracked.device), str(tracked.inode), prefix, self._ndjson_stages

    # ----- stats ---------------------------------------------------------------

    def _count(self, name: str) -> None:
        self._context.stats.extra[name] += 1

    def _update_stats(self) -> None:
        extra = self._context.stats.extra
        extra["files_open"] = len(self._open_files())
        extra["files_seen"] = len(self._files)


def create(config: FilestreamConfig, context: InputContext) -> FilestreamInput:
    if context.input_id == default_id(config):
        context.log.warning(
            "filestream input %s has no `id`; set one so its read positions survive a change of `paths`",
            context.input_id,
        )
    return FilestreamInput(config, context)


INPUT_TYPE = InputType("filestream", parse_config, create, default_id=default_id)
