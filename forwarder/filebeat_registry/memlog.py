"""Reads Filebeat's `memlog` registry store (`data/registry/filebeat/`) without changing any of its files.

The layout, as Filebeat's libbeat/statestore/backend/memlog writes it:
  meta.json   `{"version":"1"}`
  <N>.json    a checkpoint: a JSON array of every entry, `{"_key": KEY, ...value fields}`,
              N being the transaction id the checkpoint was written at (the highest N is current)
  active.dat  the path of the current checkpoint, written once there is one
  log.json    the operations after the checkpoint, two lines each:
              `{"op":"set","id":T}` then `{"k":KEY,"v":VALUE}`, or `{"op":"remove","id":T}` then `{"k":KEY}`;
              ids at or below N are older than the checkpoint, the others follow it one by one

Filebeat itself starts from the last good state when a file is damaged. An import
must not: a state older than the truth re-ships, and a misread one skips data.
So anything unexpected (a torn or unparsable line, a gap in the transaction ids, a
checkpoint that is not a JSON array, a checkpoint without active.dat) raises
`MemlogError` with one line naming the file and the fix, and nothing is read.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STORE_VERSION = "1"
_CHECKPOINT_NAME = re.compile(r"^(\d+)\.json$")
# What the user can do about a damaged registry: Filebeat rewrites it cleanly at its next start and stop.
REPAIR = ("start Filebeat once and stop it cleanly so it rewrites its registry, then import again; "
          "or start the forwarder without it (files are then read from their start)")


class MemlogError(Exception):
    """The directory is not a Filebeat memlog registry, or one of its files is damaged."""


def find_store(path: Path) -> Path:
    """The store directory for what a user may name: the store itself, `data/registry` or the data directory."""
    for candidate in (path, path / "filebeat", path / "registry" / "filebeat"):
        if (candidate / "meta.json").is_file():
            return candidate
    raise MemlogError(f"{path}: no Filebeat registry here (expected meta.json in {path}, {path / 'filebeat'} "
                      f"or {path / 'registry' / 'filebeat'}); give Filebeat's data/registry/filebeat directory")


def read_store(directory: Path) -> dict[str, dict[str, Any]]:
    """Every entry of the store as Filebeat would load it: the checkpoint, then the log's operations after it."""
    _check_meta(directory / "meta.json")
    checkpoint_id, entries = _read_checkpoint(directory)
    _replay_log(directory / "log.json", checkpoint_id, entries)
    return entries


def _check_meta(path: Path) -> None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MemlogError(f"{path}: unreadable ({exc}); {REPAIR}") from None
    version = meta.get("version") if isinstance(meta, dict) else None
    if version != STORE_VERSION:
        raise MemlogError(f"{path}: registry version {version!r}, this import reads memlog version "
                          f"{STORE_VERSION!r} (Filebeat 7.9 to 8.x)")


def _read_checkpoint(directory: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    try:
        numbered = sorted((int(m.group(1)), p) for p in directory.iterdir()
                          if (m := _CHECKPOINT_NAME.match(p.name)) and p.is_file())
    except OSError as exc:
        raise MemlogError(f"{directory}: cannot list it ({exc.strerror or exc})") from None
    if not numbered:
        return 0, {}
    checkpoint_id, path = numbered[-1]
    active = directory / "active.dat"
    if not active.is_file():
        raise MemlogError(f"{active}: missing although checkpoint {path.name} exists (an interrupted "
                          f"checkpoint); {REPAIR}")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MemlogError(f"{path}: checkpoint is not valid JSON ({exc}); {REPAIR}") from None
    if not isinstance(data, list):
        raise MemlogError(f"{path}: checkpoint is not a JSON array; {REPAIR}")
    entries: dict[str, dict[str, Any]] = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("_key"), str):
            raise MemlogError(f"{path}: checkpoint entry without a `_key` string; {REPAIR}")
        value = dict(item)
        entries[value.pop("_key")] = value
    return checkpoint_id, entries


def _replay_log(path: Path, checkpoint_id: int, entries: dict[str, dict[str, Any]]) -> None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise MemlogError(f"{path}: unreadable ({exc})") from None
    if raw and not raw.endswith(b"\n"):
        raise MemlogError(f"{path}: the last line is cut off (Filebeat stopped mid-write); {REPAIR}")
    lines = raw.splitlines()
    last_id = checkpoint_id
    for index in range(0, len(lines), 2):
        number = index + 1
        action = _json_line(path, number, lines[index])
        if index + 1 >= len(lines):
            raise MemlogError(f"{path}: line {number} starts an operation that has no data line; {REPAIR}")
        data = _json_line(path, number + 1, lines[index + 1])
        op, txid = action.get("op"), action.get("id")
        if op not in ("set", "remove") or isinstance(txid, bool) or not isinstance(txid, int):
            raise MemlogError(f"{path}: line {number} is not an operation header; {REPAIR}")
        key = data.get("k", data.get("K"))
        if not isinstance(key, str):
            raise MemlogError(f"{path}: line {number + 1} has no key; {REPAIR}")
        if txid <= checkpoint_id:
            continue  # older than the checkpoint: the log was not yet truncated after it
        if txid != last_id + 1:
            raise MemlogError(f"{path}: line {number} has transaction id {txid} after {last_id} (a gap: the log "
                              f"is damaged); {REPAIR}")
        last_id = txid
        if op == "remove":
            entries.pop(key, None)
            continue
        value = data.get("v", data.get("V"))
        if not isinstance(value, dict):
            raise MemlogError(f"{path}: line {number + 1} sets {key!r} to something that is not an object; {REPAIR}")
        entries[key] = value


def _json_line(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise MemlogError(f"{path}: line {number} is not valid JSON ({exc}); {REPAIR}") from None
    if not isinstance(value, dict):
        raise MemlogError(f"{path}: line {number} is not a JSON object; {REPAIR}")
    return value


def go_time(value: Any) -> datetime | None:
    """A time as Filebeat's registry holds it: `[extra, seconds]` (nanoseconds in the low 32 bits of
    extra, the encoding version in its top byte) or an RFC 3339 string; None for Go's zero time or
    anything else."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.year > 1 else None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(part, int) and not isinstance(part, bool) for part in value)):
        return None
    extra, seconds = value
    if (extra >> 56) & 0xFF != 0:
        return None
    nanoseconds = extra & 0xFFFFFFFF
    if seconds >= 1 << 63:
        seconds -= 1 << 64  # Go's zero time, year 1, is a negative Unix time
    if seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds + nanoseconds / 1e9, UTC)
