"""`output.file`: one JSON event per line, the same JSON the Logstash output sends.

A batch is acknowledged only after its lines are written and fsynced, so
what the registry commits is on disk. Files rotate by size:
`<filename>.ndjson` is the current file, `<filename>.1.ndjson` the previous.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from forwarder.disk import DiskError, OwnedDirectory, disk_problem, make_private_directory
from forwarder.outputs.base import HostCheck, OutputType
from forwarder.outputs.batch_worker import BatchWorker
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.queue import Batch
from forwarder.schema.declared import BOOLEAN, DURATION, INTEGER, STRING, Setting, ValueType, ignored, read_settings
from forwarder.schema.section import Section
from forwarder.stats import OutputStats


def _read_file_mode(section: Section, key: str, setting: Setting, default: int) -> int:
    value = section.raw(key)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        section.error(key, f"expected an octal file mode such as 0600 (got {value!r})")
        return default


PATH_SETTING = "output.file.path"
FILE_MODE = ValueType("octal file mode", _read_file_mode, lambda text: int(text, 8))

SETTINGS = (
    Setting("path", STRING, doc="directory of the files; created (mode 0750) when missing"),
    Setting("filename", STRING, "forwarder", "events go to `<filename>.ndjson`, older ones to `<filename>.N.ndjson`"),
    Setting("rotate_every_kb", INTEGER, 10240, "rotate once the current file would grow past this many KiB", minimum=1),
    Setting("number_of_files", INTEGER, 7, "files kept, the current one included", minimum=2, maximum=1024),
    Setting("permissions", FILE_MODE, "0600", "mode of new files"),
    Setting("rotate_on_startup", BOOLEAN, True, "start a new file at each start when the current one is not empty"),
    Setting("index", STRING, "filebeat", "becomes `@metadata.beat`"),
    Setting("bulk_max_size", INTEGER, 2048, "most events written (and fsynced) at a time", minimum=1),
    Setting("backoff.init", DURATION, "1s", "first wait before a failed write is retried"),
    Setting("backoff.max", DURATION, "60s", "longest wait between retries of a failed write"),
    *ignored("codec", doc="events are always written as JSON: accepted, without effect"),
)


@dataclass
class FileConfig:
    path: Path
    filename: str
    rotate_every_bytes: int
    number_of_files: int
    permissions: int
    rotate_on_startup: bool
    index: str
    bulk_max_size: int
    backoff_init: float
    backoff_max: float


def parse_config(section: Section) -> FileConfig:
    values = read_settings(section, SETTINGS)
    return FileConfig(
        # A missing path is already reported; the empty path only keeps the config object well-formed.
        path=Path(values["path"] or ""),
        filename=values["filename"],
        rotate_every_bytes=values["rotate_every_kb"] * 1024,
        number_of_files=values["number_of_files"],
        permissions=values["permissions"],
        rotate_on_startup=values["rotate_on_startup"],
        index=values["index"],
        bulk_max_size=values["bulk_max_size"],
        backoff_init=values["backoff.init"],
        backoff_max=values["backoff.max"],
    )


class FileOutput:
    def __init__(self, config: FileConfig, encoder: EventEncoder, stats: OutputStats) -> None:
        self._config = config
        self._encoder = encoder
        self._stats = stats
        self._current = config.path / f"{config.filename}.ndjson"
        self._fd: int | None = None
        self._size = 0
        self._worker = BatchWorker("file", self._write, stats, config.bulk_max_size, config.backoff_init,
                                   config.backoff_max)

    def start(self, queue) -> None:
        """Raises DiskError (one line naming the path and the fix) when the directory cannot be made or rotated."""
        directory = self._config.path
        try:
            make_private_directory(directory)
        except OSError as exc:
            raise DiskError(disk_problem(exc, directory, PATH_SETTING, "create directory")) from None
        try:
            if self._config.rotate_on_startup and self._current.exists() and self._current.stat().st_size > 0:
                self._rotate()
        except OSError as exc:
            raise DiskError(disk_problem(exc, directory, PATH_SETTING, "rotate the files in")) from None
        self._worker.start(queue)

    def stop(self, timeout: float) -> None:
        self._worker.stop(timeout)
        self._close()

    def _write(self, batch: Batch) -> None:
        if not batch.pending:
            return
        encode = self._encoder.encode
        data = b"\n".join([encode(event) for event in batch.pending]) + b"\n"
        if self._fd is not None and self._size > 0 and self._size + len(data) > self._config.rotate_every_bytes:
            self._rotate()
        if self._fd is None:
            self._open()
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError:
            # Part of the batch may be in the file; the reopen before the retry closes that line off.
            self._close()
            raise
        self._size += len(data)
        self._stats.bytes_written += len(data)

    def _open(self) -> None:
        self._fd = os.open(self._current, os.O_RDWR | os.O_CREAT | os.O_APPEND, self._config.permissions)
        self._size = os.fstat(self._fd).st_size
        os.lseek(self._fd, max(0, self._size - 1), os.SEEK_SET)
        if self._size and os.read(self._fd, 1) != b"\n":
            # A line torn by a crash is closed off, so the next event starts on a line of its own.
            _write_all(self._fd, b"\n")
            self._size += 1

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def _rotate(self) -> None:
        self._close()
        name, keep = self._config.filename, self._config.number_of_files
        for number in range(keep - 1, 0, -1):
            older = self._config.path / f"{name}.{number}.ndjson"
            if number == keep - 1:
                older.unlink(missing_ok=True)
            elif older.exists():
                older.replace(self._config.path / f"{name}.{number + 1}.ndjson")
        if self._current.exists():
            self._current.replace(self._config.path / f"{name}.1.ndjson")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def owned_directory(config: FileConfig) -> OwnedDirectory:
    """The output directory and its event files, for tightening what an earlier version left open."""
    return OwnedDirectory(config.path, re.compile(re.escape(config.filename) + r"(\.\d+)?\.ndjson"),
                          config.permissions)


def check(config: FileConfig) -> list[HostCheck]:
    target = str(config.path)
    try:
        make_private_directory(config.path)
    except OSError as exc:
        return [HostCheck(target, False, disk_problem(exc, config.path, PATH_SETTING, "create directory"))]
    if not os.access(config.path, os.W_OK):
        return [HostCheck(target, False, "directory is not writable by this user")]
    return [HostCheck(target, True, f"writable; events go to {config.path / (config.filename + '.ndjson')}")]


OUTPUT_TYPE = OutputType(
    name="file",
    parse_config=parse_config,
    create=FileOutput,
    check=check,
    index=lambda config: config.index,
    owned_directories=lambda config: [owned_directory(config)],
)
