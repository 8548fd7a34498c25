"""Files the forwarder keeps under `path.data` and `path.logs`: owner-only, written atomically, errors in one line.

The registry, `meta.json` and the log files tell a local user which hosts,
accounts and tenants are monitored, so, as with Filebeat, files are created
with the configured mode (default 0600) and every directory the forwarder
creates is 0750, the parents that `Path.mkdir(parents=True)` would leave at
the umask's 0755 included. A mode is applied at creation, so the umask can
only make it stricter.

A disk that refuses a write (full, read-only, wrong owner) is the operator's
to fix: `disk_problem` turns the OSError into one line naming the path and
the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

DIRECTORY_MODE = 0o750
FILE_MODE = 0o600


def make_private_directory(path: Path) -> None:
    """Creates `path` and every missing parent with mode 0750; existing directories are left as they are."""
    missing = []
    current = Path(path)
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIRECTORY_MODE)


def write_atomically(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Temp file, fsync, rename, directory fsync: a crash leaves the old content or the new, never a mix."""
    temp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    """Makes a rename or a new file in `directory` survive a power cut."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_problem(exc: OSError, path: Path | str, setting: str | None = None) -> str:
    """`cannot write PATH: REASON (FIX)`: one line for the operator."""
    return f"cannot write {path}: {exc.strerror or exc} ({disk_fix(exc, path, setting)})"


def disk_fix(exc: OSError, path: Path | str, setting: str | None = None) -> str:
    """What the operator can do about this errno on `path` (`setting` names where to point elsewhere)."""
    elsewhere = f", or set {setting} to another directory" if setting else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the filesystem of {path}"
    if exc.errno == errno.EROFS:
        return f"the filesystem is read-only: remount it read-write{elsewhere}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"make it writable by the user running the forwarder{elsewhere}"
    return f"check the disk and the filesystem of {path}{elsewhere}"
