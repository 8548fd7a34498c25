"""Linux and other POSIX systems: flock, owner and mode checks, directory fsync, SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import platform
import signal
import socket
import struct
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from forwarder.platform.base import InstalledPaths, Platform

# Linux prctl options: a signal the process gets when its parent dies, and its short name (ps, top).
PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
# Linux socket option: a counter of datagrams the kernel dropped, sent as ancillary data with each datagram.
# The number means something else on other systems, so only LinuxPlatform sets it.
SO_RXQ_OVFL = 40
SO_RCVBUFFORCE = 33
_GENERIC_SOCKET_OPTIONS = ("x86_64", "i686", "aarch64", "armv7l", "armv8l", "ppc64le", "ppc64", "s390x",
                           "riscv64")


class PosixPlatform(Platform):
    name = "posix"

    def try_lock_exclusive(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def checks_file_permissions(self, path: Path) -> bool:
        return True

    def is_trusted_owner(self, info: os.stat_result) -> bool:
        return info.st_uid in (0, os.geteuid())

    def user_id(self) -> int:
        return os.geteuid()

    def durable_replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)
        self.fsync_directory(Path(target).parent)

    def fsync_directory(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def stop_signals(self) -> Iterable[int]:
        return (signal.SIGTERM, signal.SIGINT)

    def set_signal_handler(self, signum: int, handler: object) -> None:
        signal.signal(signum, handler)

    def forks_workers(self) -> bool:
        return True

    def fork(self) -> int:
        return os.fork()

    def become_zygote(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    def become_worker(self) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    def kill_worker(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def installed_paths(self) -> InstalledPaths:
        return InstalledPaths(home=PurePosixPath("/usr/share/forwarder"), config=PurePosixPath("/etc/forwarder"),
                              data=PurePosixPath("/var/lib/forwarder"), logs=PurePosixPath("/var/log/forwarder"))


class LinuxPlatform(PosixPlatform):
    name = "linux"

    def usable_cores(self) -> int:
        return len(os.sched_getaffinity(0))

    def force_receive_buffer(self, sock: socket.socket, size: int) -> bool:
        # SO_RCVBUFFORCE is 33 wherever Linux uses the generic socket option numbers, which these machines do.
        if platform.machine() not in _GENERIC_SOCKET_OPTIONS:
            return False
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            return False  # no CAP_NET_ADMIN
        return True

    def recvmmsg(self) -> Callable[..., int] | None:
        try:
            function = ctypes.CDLL(None, use_errno=True).recvmmsg  # the C library this process already runs on
        except (OSError, AttributeError):
            return None
        function.restype = ctypes.c_int
        function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        return function

    def become_zygote(self) -> None:
        super().become_zygote()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(PR_SET_NAME, ctypes.c_char_p(b"fwd-zygote"))

    def become_worker(self) -> None:
        super().become_worker()
        _prctl(PR_SET_NAME, ctypes.c_char_p(b"fwd-worker"))

    def enable_kernel_drop_counter(self, sock: socket.socket) -> bool:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        except OSError:
            return False
        return True

    def kernel_drops(self, ancillary: Iterable[tuple[int, int, bytes]]) -> int | None:
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                return struct.unpack("=I", value[:4])[0]
        return None


def _prctl(option: int, value: object) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value)
