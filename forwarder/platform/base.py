"""What every platform of the seam provides, and the process-wide stop request.

A stop can come from a signal (SIGTERM, Ctrl-C, Ctrl-Break) or from the
Windows service manager, whose stop request arrives on another thread with
no signal at all; `request_stop` is the one path both take, so the
forwarder drains its queue the same way whichever asked.
"""

from __future__ import annotations

import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

_stop_events: list[threading.Event] = []
_stop_events_lock = threading.Lock()


def request_stop() -> None:
    """Sets every event registered by `install_stop_handlers`: the forwarder stops as on SIGTERM."""
    with _stop_events_lock:
        events = list(_stop_events)
    for event in events:
        event.set()


def _register_stop_event(stop: threading.Event) -> None:
    with _stop_events_lock:
        if stop not in _stop_events:
            _stop_events.append(stop)


def unregister_stop_event(stop: threading.Event) -> None:
    """Forgets `stop` (a forwarder that has finished no longer listens for stop requests)."""
    with _stop_events_lock:
        if stop in _stop_events:
            _stop_events.remove(stop)


@dataclass(frozen=True)
class InstalledPaths:
    """Where a packaged forwarder keeps its files: what the service passes as --path.* flags."""

    home: PurePath
    config: PurePath
    data: PurePath
    logs: PurePath

    def as_arguments(self) -> list[str]:
        return ["--path.home", str(self.home), "--path.config", str(self.config),
                "--path.data", str(self.data), "--path.logs", str(self.logs)]


class Platform(ABC):
    """One operating system's way of doing the few things that differ; `forwarder.platform.current()` picks it."""

    name: str

    @abstractmethod
    def try_lock_exclusive(self, fd: int) -> bool:
        """Takes the data path's lock on the open file `fd` without waiting; False when another process holds it."""

    @abstractmethod
    def checks_file_permissions(self, path: Path) -> bool:
        """Whether owner and mode of config files and the keystore mean anything here (`strict.perms`)."""

    @abstractmethod
    def is_trusted_owner(self, info: os.stat_result) -> bool:
        """Filebeat's rule: a config file belongs to root or to the user running the forwarder."""

    @abstractmethod
    def user_id(self) -> int:
        """The effective user id named in permission errors."""

    @abstractmethod
    def durable_replace(self, source: Path, target: Path) -> None:
        """Renames `source` over `target` so that the rename itself survives a power cut once this returns."""

    @abstractmethod
    def fsync_directory(self, directory: Path) -> None:
        """Makes a rename or a new file in `directory` survive a power cut."""

    @abstractmethod
    def stop_signals(self) -> Iterable[int]:
        """The signals that ask the forwarder to stop cleanly."""

    @abstractmethod
    def set_signal_handler(self, signum: int, handler: object) -> None:
        """`signal.signal`, behind the seam so that the Windows branch can be exercised anywhere."""

    @abstractmethod
    def installed_paths(self) -> InstalledPaths:
        """The config, data and log directories of a package or service installation."""

    def install_stop_handlers(self, stop: threading.Event) -> None:
        """Sets `stop` on a stop signal or a service stop request.

        Signal handlers can only be installed from the main thread; a Windows
        service runs the forwarder on the service manager's thread, where the
        stop request (`request_stop`) is the only way in.
        """
        _register_stop_event(stop)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.stop_signals():
            self.set_signal_handler(signum, lambda *_: request_stop())

    def enable_kernel_drop_counter(self, sock: socket.socket) -> bool:
        """Asks the kernel to report the datagrams it dropped on `sock`; False where no such counter exists."""
        return False

    def kernel_drops(self, ancillary: Iterable[tuple[int, int, bytes]]) -> int | None:
        """The kernel's drop counter from a `recvmsg` ancillary list, when it is there."""
        return None

    def force_receive_buffer(self, sock: socket.socket, size: int) -> bool:
        """Sets a receive buffer of `size` beyond the system's cap (Linux's SO_RCVBUFFORCE, which needs
        CAP_NET_ADMIN); False where that cannot be done, and the caller sets SO_RCVBUF, which is capped."""
        return False

    def recvmmsg(self) -> Callable[..., int] | None:
        """libc's recvmmsg (many datagrams per system call, the interpreter lock released once), where the
        system has it."""
        return None

    def usable_cores(self) -> int:
        """Cores this process may run on (`forwarder.workers: auto`)."""
        return os.cpu_count() or 1

    def forks_workers(self) -> bool:
        """Whether worker processes can be forked here (Windows has no fork: the forwarder runs in one process)."""
        return False

    def fork(self) -> int:
        """os.fork: 0 in the child, the child's pid in the parent."""
        raise OSError("this platform cannot fork")

    def become_zygote(self) -> None:
        """In the process that forks the workers: ends with its parent, ignores the stop signals (it exits when
        the forwarder closes its socket) and lets the kernel reap the workers."""
        raise OSError("this platform cannot fork")

    def become_worker(self) -> None:
        """In a worker, right after the fork: child processes are waited for again, and it is named."""
        raise OSError("this platform cannot fork")

    def kill_worker(self, pid: int) -> None:
        """Ends a worker process that stopped answering, at once (its chunks go to the one forked in its place)."""
        raise OSError("this platform cannot fork")

    def windows_product(self) -> tuple[str, str] | None:
        """(ProductName, build) of Windows, read from its registry; None on any other system."""
        return None
