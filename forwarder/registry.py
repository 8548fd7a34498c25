"""Durable key → cursor store under `${path.data}/registry/forwarder/`.

Files:
  meta.json             {"version": 1}
  snapshot-<N>.json     every entry as of journal sequence N (newest two kept)
  journal-<N>.log       changes after snapshot N, one line per flush:
                        `<crc32 hex> {"seq": S, "set": {key: value|null}}`

A snapshot is written to a temp file, fsynced, renamed and the directory
fsynced, so a power cut leaves either the old or the new one. The journal
that followed the previous snapshot is kept, so an unreadable newest snapshot
falls back to the previous one plus both journals without losing a commit.
A corrupt journal line is skipped with a warning; the lines after it are
still applied. A torn last line (a write cut by a crash, never acknowledged)
is cut off at start, so the next line does not land glued to it. A journal
write that fails (full disk) is cut back to the last whole line and retried
at the next flush. An unreadable snapshot is kept aside under a timestamped
`.corrupted` name. Nothing is ever silently reset.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from forwarder.disk import disk_fix, disk_problem, fsync_directory, make_private_directory, write_all, write_atomically
from forwarder.log_throttle import ThrottledLog

log = logging.getLogger("forwarder.registry")

FORMAT_VERSION = 1
SNAPSHOT_AFTER_BYTES = 4 * 1024 * 1024
_SNAPSHOT_NAME = re.compile(r"^snapshot-(\d+)\.json$")
_JOURNAL_NAME = re.compile(r"^journal-(\d+)\.log$")
PATH_SETTING = "forwarder.registry.path"


class RegistryError(Exception):
    """The registry cannot be opened (permissions, full disk, wrong version) or its last changes saved."""


class Registry:
    def __init__(self, directory: Path, flush_interval: float = 1.0, file_mode: int = 0o600) -> None:
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.file_mode = file_mode
        self._entries: dict[str, Any] = {}
        self._dirty: dict[str, Any] = {}
        self._seq = 0
        self._snapshot_seq = 0
        self._journal: int | None = None
        self._journal_path: Path | None = None
        self._journal_bytes = 0
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self.write_errors = 0
        self._journal_failures = ThrottledLog(log, logging.ERROR)
        self._last_write_error: OSError | None = None
        try:
            self._open()
        except OSError as exc:
            raise RegistryError(disk_problem(exc, self.directory, PATH_SETTING)) from None

    # ----- reading -------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._entries.get(key, default)

    def with_prefix(self, prefix: str) -> dict[str, Any]:
        """Entries whose key starts with `prefix`, keyed by the rest of the key."""
        with self._lock:
            return {k[len(prefix):]: v for k, v in self._entries.items() if k.startswith(prefix)}

    def __len__(self) -> int:
        return len(self._entries)

    # ----- writing -------------------------------------------------------

    def commit(self, updates: dict[str, Any]) -> None:
        """Applies updates (None deletes) in memory; they reach disk at the next flush."""
        with self._lock:
            for key, value in updates.items():
                if value is None:
                    self._entries.pop(key, None)
                else:
                    self._entries[key] = value
                self._dirty[key] = value
        if self.flush_interval <= 0:
            self.flush()

    def flush(self) -> None:
        with self._io_lock:
            with self._lock:
                if not self._dirty:
                    return
                dirty, self._dirty = self._dirty, {}
                self._seq += 1
                seq = self._seq
            payload = orjson.dumps({"seq": seq, "set": dirty}, option=orjson.OPT_SORT_KEYS)
            line = b"%08x %s\n" % (zlib.crc32(payload), payload)
            try:
                write_all(self._journal, line)
                os.fsync(self._journal)
            except OSError as exc:
                self._journal_write_failed(exc)
                with self._lock:
                    self._dirty = {**dirty, **self._dirty}
                return
            self._journal_bytes += len(line)
            self.writes += 1
            self._last_write_error = None
            self._journal_failures.recovered("registry: writing the journal again in %s", self.directory)
            if self._journal_bytes >= SNAPSHOT_AFTER_BYTES:
                self._write_snapshot()

    def start(self) -> None:
        if self.flush_interval > 0:
            self._thread = threading.Thread(target=self._flush_loop, name="registry-flush", daemon=True)
            self._thread.start()

    def _journal_write_failed(self, exc: OSError) -> None:
        """Cuts the journal back to its last whole line, so the retry starts a line of its own."""
        self.write_errors += 1
        self._last_write_error = exc
        with contextlib.suppress(OSError):
            os.ftruncate(self._journal, self._journal_bytes)
        self._journal_failures.report("registry: cannot write journal %s: %s (%s); will retry", self._journal_path,
                                      exc.strerror, disk_fix(exc, self.directory, PATH_SETTING))

    def close(self) -> None:
        """Flushes, writes a final snapshot and closes the journal.

        Raises RegistryError if the last changes could not be written: the
        events they acknowledge will be read and sent again at the next start.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._io_lock:
            self._write_snapshot()
            if self._journal is not None:
                os.close(self._journal)
                self._journal = None
        if self._dirty and self._last_write_error is not None:
            raise RegistryError(f"{disk_problem(self._last_write_error, self.directory, PATH_SETTING)}; "
                                f"{len(self._dirty)} position(s) acknowledged since the last save are not "
                                "saved, so their events will be sent again at the next start")

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    # ----- files ---------------------------------------------------------

    def _open(self) -> None:
        """Rewrites meta.json at every start: proof that the directory is writable before any input runs."""
        make_private_directory(self.directory)
        meta = self.directory / "meta.json"
        if meta.exists():
            try:
                version = json.loads(meta.read_text()).get("version")
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("registry: %s is unreadable (%s); rewriting it", meta, exc)
                version = FORMAT_VERSION
            if version != FORMAT_VERSION:
                raise RegistryError(f"{meta}: registry format version {version!r}, "
                                    f"this forwarder reads {FORMAT_VERSION}")
        write_atomically(meta, json.dumps({"version": FORMAT_VERSION}).encode(), self.file_mode)
        self._load()
        self._journal_path = self.directory / f"journal-{self._snapshot_seq}.log"
        self._journal = self._open_journal(self._journal_path)
        self._journal_bytes = os.fstat(self._journal).st_size

    def _load(self) -> None:
        snapshots = self._numbered(_SNAPSHOT_NAME)
        base_seq = 0
        for seq, path in reversed(snapshots):
            try:
                data = json.loads(path.read_bytes())
                if not isinstance(data.get("entries"), dict) or data.get("seq") != seq:
                    raise ValueError("unexpected content")
            except (OSError, ValueError, AttributeError) as exc:
                kept = self._keep_aside(path)
                log.warning("registry: snapshot %s is unreadable (%s); kept as %s, trying an older one",
                            path, exc, kept.name)
                continue
            self._entries = data["entries"]
            base_seq = seq
            break
        else:
            if snapshots:
                log.warning("registry: no snapshot in %s is readable; rebuilding from journals only", self.directory)
        self._seq = base_seq
        for _, path in self._numbered(_JOURNAL_NAME):
            self._replay(path, base_seq)
        self._snapshot_seq = self._seq
        if self._seq != base_seq or not snapshots:
            self._write_snapshot()

    @staticmethod
    def _keep_aside(path: Path) -> Path:
        """Renames an unreadable snapshot to a name no later corruption will reuse."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = path.with_name(f"{path.name}.{stamp}.corrupted")
        number = 1
        while kept.exists():
            number += 1
            kept = path.with_name(f"{path.name}.{stamp}-{number}.corrupted")
        path.replace(kept)
        return kept

    def _replay(self, path: Path, after_seq: int) -> None:
        whole_lines_end = 0
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    log.warning("registry: corrupt line %d of %s is a torn write (a crash before it was "
                                "acknowledged); cutting it off so the next line starts clean", number, path)
                    os.truncate(path, whole_lines_end)
                    break
                whole_lines_end += len(raw)
                record = self._parse_journal_line(raw)
                if record is None:
                    log.warning("registry: skipping corrupt line %d of %s", number, path)
                    continue
                seq, changes = record
                if seq <= after_seq:
                    continue
                for key, value in changes.items():
                    if value is None:
                        self._entries.pop(key, None)
                    else:
                        self._entries[key] = value
                self._seq = max(self._seq, seq)

    @staticmethod
    def _parse_journal_line(raw: bytes) -> tuple[int, dict[str, Any]] | None:
        try:
            crc_text, payload = raw.rstrip(b"\n").split(b" ", 1)
            if int(crc_text, 16) != zlib.crc32(payload):
                return None
            data = json.loads(payload)
            return int(data["seq"]), dict(data["set"])
        except (ValueError, KeyError, TypeError):
            return None

    def _write_snapshot(self) -> None:
        """Caller holds _io_lock (or is single-threaded during open)."""
        with self._lock:
            seq = self._seq
            body = orjson.dumps({"seq": seq, "entries": self._entries}, option=orjson.OPT_SORT_KEYS)
        try:
            write_atomically(self.directory / f"snapshot-{seq}.json", body, self.file_mode)
            journal_path = self.directory / f"journal-{seq}.log"
            journal = self._open_journal(journal_path) if self._journal is not None else None
        except OSError as exc:
            # The current journal stays in use (a snapshot just written is loaded with it).
            self.write_errors += 1
            log.error("registry: cannot write snapshot in %s: %s (%s)", self.directory, exc.strerror,
                      disk_fix(exc, self.directory, PATH_SETTING))
            return
        previous = self._snapshot_seq
        self._snapshot_seq = seq
        if journal is not None:
            os.close(self._journal)
            self._journal, self._journal_path = journal, journal_path
            self._journal_bytes = os.fstat(journal).st_size
        self._prune(keep_from=min(previous, seq))

    def _prune(self, keep_from: int) -> None:
        """Keeps the newest two snapshots and every journal they may need."""
        snapshots = self._numbered(_SNAPSHOT_NAME)
        keep = {seq for seq, _ in snapshots[-2:]} | {keep_from}
        oldest_kept = min(keep)
        for seq, path in snapshots:
            if seq not in keep:
                path.unlink(missing_ok=True)
        for seq, path in self._numbered(_JOURNAL_NAME):
            if seq < oldest_kept and path != self._journal_path:
                path.unlink(missing_ok=True)

    def _numbered(self, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.iterdir():
            match = pattern.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _open_journal(self, path: Path) -> int:
        """An unbuffered append descriptor: a failed write leaves nothing pending to be written later."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode)
        try:
            fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            raise
        return fd
