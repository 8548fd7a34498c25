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
A torn or corrupt journal line is skipped with a warning; the lines after it
are still applied. Nothing is ever silently reset.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import zlib
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("forwarder.registry")

FORMAT_VERSION = 1
SNAPSHOT_AFTER_BYTES = 4 * 1024 * 1024
_SNAPSHOT_NAME = re.compile(r"^snapshot-(\d+)\.json$")
_JOURNAL_NAME = re.compile(r"^journal-(\d+)\.log$")


class RegistryError(Exception):
    """The registry cannot be opened (permissions, wrong version)."""


class Registry:
    def __init__(self, directory: Path, flush_interval: float = 1.0, file_mode: int = 0o600) -> None:
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.file_mode = file_mode
        self._entries: dict[str, Any] = {}
        self._dirty: dict[str, Any] = {}
        self._seq = 0
        self._snapshot_seq = 0
        self._journal: Any = None
        self._journal_path: Path | None = None
        self._journal_bytes = 0
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self.write_errors = 0
        self._open()

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
                self._journal.write(line)
                self._journal.flush()
                os.fsync(self._journal.fileno())
                self._journal_bytes += len(line)
                self.writes += 1
            except OSError as exc:
                self.write_errors += 1
                log.error("registry: cannot write journal in %s: %s; will retry", self.directory, exc)
                with self._lock:
                    self._dirty = {**dirty, **self._dirty}
                return
            if self._journal_bytes >= SNAPSHOT_AFTER_BYTES:
                self._write_snapshot()

    def start(self) -> None:
        if self.flush_interval > 0:
            self._thread = threading.Thread(target=self._flush_loop, name="registry-flush", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Flushes, writes a final snapshot and closes the journal."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._io_lock:
            self._write_snapshot()
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    # ----- files ---------------------------------------------------------

    def _open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise RegistryError(f"cannot create registry directory {self.directory}: {exc}") from exc
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
        self._write_atomically(meta, json.dumps({"version": FORMAT_VERSION}).encode())
        self._load()
        self._journal_path = self.directory / f"journal-{self._snapshot_seq}.log"
        self._journal = self._open_journal(self._journal_path)

    def _load(self) -> None:
        snapshots = self._numbered(_SNAPSHOT_NAME)
        base_seq = 0
        for seq, path in reversed(snapshots):
            try:
                data = json.loads(path.read_bytes())
                if not isinstance(data.get("entries"), dict) or data.get("seq") != seq:
                    raise ValueError("unexpected content")
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("registry: snapshot %s is unreadable (%s); kept as .corrupted, trying an older one",
                            path, exc)
                path.replace(path.with_name(path.name + ".corrupted"))
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

    def _replay(self, path: Path, after_seq: int) -> None:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
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
            if not raw.endswith(b"\n") or int(crc_text, 16) != zlib.crc32(payload):
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
            self._write_atomically(self.directory / f"snapshot-{seq}.json", body)
        except OSError as exc:
            self.write_errors += 1
            log.error("registry: cannot write snapshot in %s: %s", self.directory, exc)
            return
        previous = self._snapshot_seq
        self._snapshot_seq = seq
        if self._journal is not None:
            self._journal.close()
            self._journal_path = self.directory / f"journal-{seq}.log"
            self._journal = self._open_journal(self._journal_path)
            self._journal_bytes = 0
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

    def _open_journal(self, path: Path) -> Any:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode)
        handle = os.fdopen(fd, "ab")
        self._journal_bytes = path.stat().st_size
        self._fsync_directory()
        return handle

    def _write_atomically(self, path: Path, data: bytes) -> None:
        temp = path.with_name(path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        if os.name != "posix":
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
