"""Windows: msvcrt byte-range lock, MoveFileExW write-through, Ctrl-C/Ctrl-Break, ProgramData paths.

The msvcrt and kernel32 calls sit in `WindowsCalls`, loaded on first use,
so that this branch can be selected and exercised on any system with
stand-ins for those two libraries.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

from forwarder.platform.base import InstalledPaths, Platform

log = logging.getLogger("forwarder")

# winbase.h
MOVEFILE_REPLACE_EXISTING = 0x1
MOVEFILE_WRITE_THROUGH = 0x8
# signal.h of the Microsoft C runtime: Ctrl-Break in a console.
SIGBREAK = 21
DEFAULT_PROGRAM_DATA = r"C:\ProgramData"


class WindowsCalls:
    """The msvcrt and kernel32 calls the Windows branch makes; each library can be handed in instead."""

    def __init__(self, msvcrt: Any = None, kernel32: Any = None, last_error: Callable[[], int] | None = None,
                 set_signal_handler: Callable[[int, Any], Any] | None = None,
                 environ: Mapping[str, str] | None = None, winreg: Any = None) -> None:
        self._msvcrt = msvcrt
        self._winreg = winreg
        self._kernel32 = kernel32
        self._last_error = last_error
        self.set_signal_handler = set_signal_handler or signal.signal
        self.environ = os.environ if environ is None else environ

    def lock_first_byte(self, fd: int) -> bool:
        """msvcrt's non-blocking lock of byte 0: held until the file is closed or the process ends."""
        msvcrt = self._msvcrt or importlib.import_module("msvcrt")
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def move_file_write_through(self, source: Path, target: Path) -> None:
        """MoveFileExW: replaces `target`, and returns only once the move is flushed to disk."""
        kernel32 = self._kernel32 or ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        if not kernel32.MoveFileExW(str(source), str(target), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH):
            code = (self._last_error or ctypes.get_last_error)()  # type: ignore[attr-defined]
            raise OSError(0, f"MoveFileExW failed (Windows error {code})", str(source), code, str(target))


    def product_name_and_build(self) -> tuple[str, str] | None:
        """ProductName and CurrentBuild.UBR from HKLM's CurrentVersion key; None when they cannot be read."""
        try:
            winreg = self._winreg or importlib.import_module("winreg")
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Windows NT\CurrentVersion") as key:
                name = winreg.QueryValueEx(key, "ProductName")[0]
                build = f"{winreg.QueryValueEx(key, 'CurrentBuild')[0]}.{winreg.QueryValueEx(key, 'UBR')[0]}"
        except (ImportError, OSError):
            return None
        return name, build


class WindowsPlatform(Platform):
    name = "windows"

    def __init__(self, calls: WindowsCalls | None = None) -> None:
        self.calls = calls or WindowsCalls()
        self._told_about_permissions = False

    def try_lock_exclusive(self, fd: int) -> bool:
        return self.calls.lock_first_byte(fd)

    def checks_file_permissions(self, path: Path) -> bool:
        """No POSIX owner or mode on Windows: like Filebeat, the check is skipped, said once in an info line."""
        if not self._told_about_permissions:
            self._told_about_permissions = True
            log.info("not checking the owner and mode of %s and other config files: strict.perms applies on "
                     "Linux only (as in Filebeat); protect the config directory with Windows ACLs", path)
        return False

    def is_trusted_owner(self, info: os.stat_result) -> bool:
        return True

    def user_id(self) -> int:
        return -1

    def durable_replace(self, source: Path, target: Path) -> None:
        self.calls.move_file_write_through(source, target)

    def fsync_directory(self, directory: Path) -> None:
        """Nothing to do: a directory cannot be opened for fsync on Windows; NTFS journals its entries and
        MOVEFILE_WRITE_THROUGH makes a rename durable."""

    def stop_signals(self) -> Iterable[int]:
        return (signal.SIGINT, SIGBREAK)

    def set_signal_handler(self, signum: int, handler: object) -> None:
        self.calls.set_signal_handler(signum, handler)

    def installed_paths(self) -> InstalledPaths:
        base = PureWindowsPath(self.calls.environ.get("PROGRAMDATA") or DEFAULT_PROGRAM_DATA) / "forwarder"
        return InstalledPaths(home=base, config=base / "config", data=base / "data", logs=base / "logs")

    def windows_product(self) -> tuple[str, str] | None:
        return self.calls.product_name_and_build()
