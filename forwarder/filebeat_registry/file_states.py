"""Filebeat's file positions (`filestream` and `log` inputs) as positions of this forwarder's file inputs.

Filebeat keys a filestream position `filestream::<input id>::<identity>` (`.global`
for an input without `id`), the identity being `native::<inode>-<device>`,
`fingerprint::<sha256 of the first 1024 bytes>` or `path::<path>`; the value holds
`cursor.offset` and `meta.source` (the path). The log input's positions are
`filebeat::logs::<identity>` with `offset`, `source` and `FileStateOS`.

Ours are keyed `<type>::<input id>::<device>-<inode>`. So each Filebeat position
is looked up among the files the target input matches now, by inode and device
or by the hash of the first 1024 bytes (the same hash our reader keeps), and the
file found must still be at least as long as the offset: a shorter one was
truncated or replaced, and reading it from 0 is right. The target input is the
one with Filebeat's input id; for a log input, or a filestream input without id,
it is the one input of that type whose paths hold the file. Anything else (no
such input, two candidates, the file gone, an identity kind we do not keep) is
listed as not imported, with the reason, and never guessed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat as stat_module
from dataclasses import dataclass, field
from typing import Any

from forwarder.config.inputs import InputSpec
from forwarder.inputs.file_reader import FINGERPRINT_BYTES, FilePosition, file_identity

LOG_PREFIX = "filebeat::logs::"
FILESTREAM_PREFIX = "filestream::"
GLOBAL_INPUT_ID = ".global"


@dataclass(frozen=True)
class FilebeatFileState:
    """One Filebeat file position, reduced to what locates the file and where reading stops."""

    key: str
    input_type: str  # "filestream" or "log"
    input_id: str | None  # Filebeat's input id; None for the log input and id-less filestream inputs
    identity_kind: str  # "native", "fingerprint", "path" or another Filebeat identity
    identity_value: str
    source: str
    offset: int


@dataclass
class FoundFile:
    path: str
    stat: os.stat_result


@dataclass
class InputFiles:
    """The files one of our file inputs matches now, found the way the input scans."""

    spec: InputSpec
    by_identity: dict[str, FoundFile] = field(default_factory=dict)
    _fingerprints: dict[str, str] | None = None

    @classmethod
    def scan(cls, spec: InputSpec) -> InputFiles:
        config = spec.config
        files = cls(spec)
        for pattern in config.paths:
            for path in sorted(glob.glob(pattern, recursive=True, include_hidden=True)):
                if any(p.search(path) for p in config.exclude_files):
                    continue
                if config.include_files and not any(p.search(path) for p in config.include_files):
                    continue
                try:
                    stat = os.stat(path) if config.symlinks else os.lstat(path)
                except OSError:
                    continue
                if stat_module.S_ISREG(stat.st_mode):
                    files.by_identity.setdefault(file_identity(stat), FoundFile(path, stat))
        return files

    def with_fingerprint(self, fingerprint: str) -> tuple[str, FoundFile] | None:
        if self._fingerprints is None:
            self._fingerprints = {}
            for identity, found in self.by_identity.items():
                head = _head(found.path)
                if head is not None and len(head) == FINGERPRINT_BYTES:
                    self._fingerprints[hashlib.sha256(head).hexdigest()] = identity
        identity = self._fingerprints.get(fingerprint)
        return None if identity is None else (identity, self.by_identity[identity])

    def with_path(self, path: str) -> tuple[str, FoundFile] | None:
        for identity, found in self.by_identity.items():
            if found.path == path:
                return identity, found
        return None


def _head(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(FINGERPRINT_BYTES)
    except OSError:
        return None


def parse_file_state(key: str, value: dict[str, Any]) -> FilebeatFileState | str | None:
    """The state, None when it holds no position to carry over, or why it cannot be read."""
    if key.startswith(LOG_PREFIX):
        return _parse_log_state(key, value)
    parts = key.split("::", 3)
    if len(parts) != 4:
        return "unexpected filestream key"
    _, input_id, kind, identity = parts
    if value.get("ttl") == 0:
        return None  # removed by Filebeat's cleaner; the entry disappears at its next cleanup
    cursor = value.get("cursor")
    meta = value.get("meta") if isinstance(value.get("meta"), dict) else {}
    if cursor is None:
        return None
    offset = cursor.get("offset") if isinstance(cursor, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return "its cursor has no offset"
    return FilebeatFileState(key, "filestream", None if input_id == GLOBAL_INPUT_ID else input_id, kind, identity,
                             str(meta.get("source", "")), offset)


def _parse_log_state(key: str, value: dict[str, Any]) -> FilebeatFileState | str | None:
    if value.get("type", "log") != "log":
        return f"a state of Filebeat's {value.get('type')!r} input, which this forwarder does not have"
    if value.get("ttl") == 0:
        return None
    offset = value.get("offset")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return "it has no offset"
    os_state = value.get("FileStateOS") if isinstance(value.get("FileStateOS"), dict) else {}
    identity_name = str(value.get("identifier_name") or "native")
    if identity_name == "native":
        identity = f"{os_state.get('inode')}-{os_state.get('device')}"
    else:
        identity = key[len(LOG_PREFIX):].split("::", 1)[-1]
    return FilebeatFileState(key, "log", None, identity_name, identity, str(value.get("source", "")), offset)


def map_file_state(state: FilebeatFileState, inputs: list[InputFiles]) -> tuple[InputFiles, str, FoundFile] | str:
    """(our input, our file identity, the file) for one Filebeat position, or why it is not imported."""
    same_type = [files for files in inputs if files.spec.client.input_type == state.input_type]
    if state.input_id is not None:
        named = [files for files in same_type if files.spec.client.input_id == state.input_id]
        if not named:
            return f"no {state.input_type} input with id {state.input_id!r} in the config"
        candidates = named
    else:
        candidates = same_type
        if not candidates:
            return f"no {state.input_type} input in the config"
    matches = []
    for files in candidates:
        found = _locate(state, files)
        if isinstance(found, str):
            return found
        if found is not None:
            matches.append((files, *found))
    if not matches:
        where = (f"{state.input_type} input {candidates[0].spec.client.input_id!r}" if len(candidates) == 1
                 else f"any {state.input_type} input")
        return f"the file is not among the files {where} reads now (deleted, or moved out of its paths)"
    if len(matches) > 1:
        ids = ", ".join(repr(files.spec.client.input_id) for files, _, _ in matches)
        return f"several inputs read this file ({ids}); set the same `id` as in Filebeat to choose"
    files, identity, found = matches[0]
    if found.stat.st_size < state.offset:
        return (f"{found.path} is {found.stat.st_size} bytes now, shorter than Filebeat's offset {state.offset} "
                "(truncated or replaced); it is read from the start")
    return files, identity, found


def _locate(state: FilebeatFileState, files: InputFiles) -> tuple[str, FoundFile] | str | None:
    kind = state.identity_kind
    if kind == "native":
        inode, _, device = state.identity_value.partition("-")
        if not (inode.isdigit() and device.isdigit()):
            return f"unexpected native file identity {state.identity_value!r}"
        identity = f"{int(device)}-{int(inode)}"
        found = files.by_identity.get(identity)
        return None if found is None else (identity, found)
    if kind == "fingerprint":
        return files.with_fingerprint(state.identity_value)
    if kind == "path":
        return files.with_path(state.identity_value)
    return f"Filebeat's {kind!r} file identity is not one this forwarder keeps"


def our_file_position(found: FoundFile, offset: int) -> dict[str, Any]:
    """Our cursor at Filebeat's offset, with the fingerprint of the file's head as our reader would take it."""
    head = _head(found.path) or b""
    head = head[: min(len(head), found.stat.st_size)]
    position = FilePosition(offset=offset, fingerprint=hashlib.sha256(head).hexdigest() if head else "",
                            fingerprint_size=len(head))
    return position.to_cursor(found.path)
