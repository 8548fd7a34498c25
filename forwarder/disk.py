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

An installation made by an earlier version keeps the looser modes it was
given (directories 0755, files 0644) until `tighten_owned_modes` is run over
the forwarder's own directories at start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forwarder.platform import current_platform

DIRECTORY_MODE = 0o750
FILE_MODE = 0o600
# What `tighten_owned_modes` takes away from a directory: group write and everything for others.
GROUP_WRITE_AND_OTHERS = 0o027


class DiskError(Exception):
    """A path the forwarder must create or write is refused; the message is the one line for the operator."""


def make_private_directory(path: Path) -> None:
    """Creates `path` and every missing parent with mode 0750; existing directories are left as they are.

    A file where a directory should be is NotADirectoryError naming that file,
    so the operator is told which one is in the way.
    """
    missing = []
    current = Path(path)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(current))
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory)) from None


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
        current_platform().durable_replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    """Makes a rename or a new file in `directory` survive a power cut (Windows needs nothing: see the seam)."""
    current_platform().fsync_directory(directory)


def disk_problem(exc: OSError, path: Path | str, setting: str | None = None, action: str = "write") -> str:
    """`cannot ACTION PATH: REASON (FIX)`: one line for the operator."""
    return f"cannot {action} {path}: {exc.strerror or exc} ({disk_fix(exc, path, setting)})"


def disk_fix(exc: OSError, path: Path | str, setting: str | None = None) -> str:
    """What the operator can do about this errno on `path` (`setting` names where to point elsewhere)."""
    elsewhere = f", or set {setting} to another directory" if setting else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the filesystem of {path}"
    if exc.errno == errno.EROFS:
        return f"the filesystem is read-only: remount it read-write{elsewhere}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"make it writable by the user running the forwarder{elsewhere}"
    if exc.errno == errno.ENOTDIR and exc.filename:
        return f"{exc.filename} is a file, not a directory: move it away{elsewhere}"
    return f"check the disk and the filesystem of {path}{elsewhere}"


@dataclass(frozen=True)
class OwnedDirectory:
    """A directory that is the forwarder's, and which of the files in it are (their names and their mode).

    Only these are tightened: other files in the directory (a user's, an
    input's) are not the forwarder's to change.
    """

    path: Path
    file_names: re.Pattern[str] | None = None
    file_mode: int = FILE_MODE


@dataclass
class ModeChanges:
    tightened: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def tighten_owned_modes(directories: Iterable[OwnedDirectory]) -> ModeChanges:
    """Takes group write and all access by others from each directory, and limits its files to their mode.

    A mode is only ever narrowed (bits are removed, none added), so a site's
    stricter choice stays. A directory with the sticky bit is a shared one
    (such as /tmp) pointed at by mistake and is left alone; symbolic links are
    not followed inside a directory.
    """
    changes = ModeChanges()
    for owned in directories:
        try:
            info = os.stat(owned.path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not created yet; it will be created owner-only (or its creation reports the problem)
        except OSError as exc:
            changes.failed.append(f"{owned.path}: {exc.strerror or exc}")
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_mode & stat.S_ISVTX:
            continue
        _narrow(Path(owned.path), info.st_mode, ~GROUP_WRITE_AND_OTHERS, changes)
        if owned.file_names is None:
            continue
        try:
            entries = list(os.scandir(owned.path))
        except OSError as exc:
            changes.failed.append(f"{owned.path}: {exc.strerror or exc}")
            continue
        for entry in entries:
            if owned.file_names.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    _narrow(Path(entry.path), entry.stat(follow_symlinks=False).st_mode, owned.file_mode, changes)
    return changes


def _narrow(path: Path, st_mode: int, allowed: int, changes: ModeChanges) -> None:
    before = stat.S_IMODE(st_mode)
    after = before & allowed
    if after == before:
        return
    try:
        os.chmod(path, after)
    except OSError as exc:
        changes.failed.append(f"{path} is {before:04o}: {exc.strerror or exc} (run chmod {after:04o} {path})")
        return
    changes.tightened.append(f"{path} {before:04o} -> {after:04o}")
