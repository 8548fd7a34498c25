"""The platform seam: everything that differs between Linux (POSIX) and Windows, and nothing else.

Modules outside this package call no POSIX-only or Windows-only API
(`tests/unit/test_platform_seam.py` walks the source tree to keep it so):
they ask `current_platform()` for the data-path lock, the config permission
check, durable renames, stop signals, installed paths and Linux's socket
drop counter. Each platform is an object, so a test selects the Windows
branch explicitly with `platform_named("windows")` and stand-ins for
msvcrt/kernel32, without pretending the whole process runs on Windows.
"""

from __future__ import annotations

import sys
from functools import cache

from forwarder.platform.base import InstalledPaths, Platform, request_stop, unregister_stop_event

__all__ = ["InstalledPaths", "Platform", "current_platform", "platform_named", "request_stop",
           "unregister_stop_event"]


def platform_named(name: str) -> Platform:
    """`linux`, `posix` or `windows`; the module of another platform is never imported."""
    if name == "windows":
        from forwarder.platform.windows import WindowsPlatform
        return WindowsPlatform()
    if name == "linux":
        from forwarder.platform.posix import LinuxPlatform
        return LinuxPlatform()
    if name == "posix":
        from forwarder.platform.posix import PosixPlatform
        return PosixPlatform()
    raise ValueError(f"unknown platform {name!r} (linux, posix or windows)")


@cache
def current_platform() -> Platform:
    """The platform this process runs on."""
    if sys.platform == "win32":
        return platform_named("windows")
    if sys.platform.startswith("linux"):
        return platform_named("linux")
    return platform_named("posix")
