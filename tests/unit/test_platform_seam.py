"""The platform seam: no OS-specific call outside it, and its Windows branch selected explicitly and exercised here.

The Windows branch runs with stand-ins for the two Windows libraries
(msvcrt, kernel32) and for `signal.signal`; everything above them is the
real code the service runs on Windows.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from forwarder.cli import build_parser, main, options_from
from forwarder.platform import platform_named, request_stop, unregister_stop_event
from forwarder.platform.windows import (
    MOVEFILE_REPLACE_EXISTING,
    MOVEFILE_WRITE_THROUGH,
    SIGBREAK,
    WindowsCalls,
    WindowsPlatform,
)
from forwarder.service_command import (
    control_command,
    host_run_arguments,
    install_commands,
    run_service_command,
    service_host_command,
)

SOURCE = Path(__file__).resolve().parents[2] / "forwarder"
SEAM = SOURCE / "platform"
FORBIDDEN_MODULES = {"fcntl", "msvcrt", "pwd", "grp", "winreg", "_winapi", "termios", "resource", "servicemanager",
                     "pywintypes", "win32con"}
FORBIDDEN_ATTRIBUTES = {
    "os": {"geteuid", "getuid", "getegid", "getgid", "fchown", "chown", "lchown", "fork", "setsid", "killpg",
           "getpgid", "setuid", "setgid", "initgroups", "name", "O_DIRECTORY", "startfile"},
    "signal": {"SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGKILL", "SIGCHLD", "SIGALRM", "SIGPIPE", "SIGBREAK",
               "CTRL_C_EVENT", "CTRL_BREAK_EVENT", "alarm", "setitimer", "pthread_kill", "SIGTERM"},
    "sys": {"platform", "getwindowsversion"},
    "ctypes": {"windll", "WinDLL", "WinError", "get_last_error"},
}


def platform_calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            base = (node.module or "").split(".")[0]
            for alias in node.names:
                if alias.name in FORBIDDEN_ATTRIBUTES.get(base, ()):
                    found.add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in FORBIDDEN_ATTRIBUTES.get(node.value.id, ()):
                found.add(f"{node.value.id}.{node.attr}")
            continue
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in FORBIDDEN_MODULES or top.startswith("win32"):
                found.add(f"import {top}")
    return found


def test_no_module_outside_the_seam_calls_a_posix_only_or_windows_only_api():
    offenders = set()
    for path in sorted(SOURCE.rglob("*.py")):
        if SEAM in path.parents:
            continue
        relative = path.relative_to(SOURCE).as_posix()
        offenders |= {(relative, call) for call in platform_calls(path)}
    assert offenders == set(), "move these calls into forwarder/platform/"


def test_the_source_check_sees_each_kind_of_call(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import fcntl\nimport win32service\nfrom pwd import getpwnam\nimport os, signal, sys\n"
                      "from os import geteuid\nos.geteuid()\nos.chown('x', 1, 1)\nsignal.SIGHUP\n"
                      "if sys.platform == 'win32': pass\nif os.name == 'nt': pass\n")
    assert platform_calls(sample) == {"import fcntl", "import win32service", "import pwd", "os.geteuid", "os.chown",
                                      "signal.SIGHUP", "sys.platform", "os.name"}


def test_the_seam_itself_uses_them():
    assert "import fcntl" in platform_calls(SEAM / "posix.py")
    assert "os.geteuid" in platform_calls(SEAM / "posix.py")


class FakeMsvcrt:
    """msvcrt.locking's contract: LK_NBLCK raises OSError when another handle holds the range."""

    LK_NBLCK = 2

    def __init__(self) -> None:
        self.held: set[int] = set()
        self.calls: list[tuple[int, int, int, int]] = []

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        position = os.lseek(fd, 0, os.SEEK_CUR)
        self.calls.append((fd, mode, nbytes, position))
        if position in self.held:
            raise PermissionError(13, "Permission denied")
        self.held.add(position)


class FakeKernel32:
    def __init__(self, succeed: bool = True) -> None:
        self.succeed = succeed
        self.moves: list[tuple[str, str, int]] = []

    def MoveFileExW(self, source: str, target: str, flags: int) -> int:
        self.moves.append((source, target, flags))
        if self.succeed:
            os.replace(source, target)
        return int(self.succeed)


def windows(**calls) -> WindowsPlatform:
    """The Windows branch, selected explicitly, with stand-ins for the Windows libraries it would load."""
    return WindowsPlatform(WindowsCalls(**calls))


def test_windows_lock_takes_byte_zero_without_waiting_and_reports_a_holder(tmp_path):
    msvcrt = FakeMsvcrt()
    host = windows(msvcrt=msvcrt)
    path = tmp_path / "forwarder.lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR)
    try:
        os.write(first, b"1234")
        assert host.try_lock_exclusive(first) is True
        assert host.try_lock_exclusive(second) is False
    finally:
        os.close(first)
        os.close(second)
    assert [(mode, nbytes, position) for _, mode, nbytes, position in msvcrt.calls] == [(2, 1, 0), (2, 1, 0)]


def test_windows_durable_replace_is_one_write_through_move(tmp_path):
    kernel32 = FakeKernel32()
    source, target = tmp_path / "registry.tmp", tmp_path / "registry"
    source.write_text("new")
    target.write_text("old")
    windows(kernel32=kernel32).durable_replace(source, target)
    assert kernel32.moves == [(str(source), str(target), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)]
    assert MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH == 0x9
    assert target.read_text() == "new"


def test_windows_failed_move_is_an_oserror_naming_both_files(tmp_path):
    host = windows(kernel32=FakeKernel32(succeed=False), last_error=lambda: 5)
    with pytest.raises(OSError) as raised:
        host.durable_replace(tmp_path / "a.tmp", tmp_path / "a")
    assert (raised.value.filename, raised.value.filename2) == (str(tmp_path / "a.tmp"), str(tmp_path / "a"))
    assert "Windows error 5" in str(raised.value)


def test_windows_skips_the_permission_check_with_one_info_line(tmp_path, caplog):
    host = windows()
    with caplog.at_level(logging.INFO, logger="forwarder"):
        assert host.checks_file_permissions(tmp_path / "forwarder.yml") is False
        assert host.checks_file_permissions(tmp_path / "forwarder.keystore") is False
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and "strict.perms applies on Linux only" in lines[0], lines


def test_windows_directory_fsync_is_not_attempted(tmp_path):
    windows().fsync_directory(tmp_path / "does-not-exist")


def test_windows_stop_handlers_are_ctrl_c_and_ctrl_break_and_set_the_stop_event():
    installed = {}
    host = windows(set_signal_handler=installed.__setitem__)
    stop = threading.Event()
    try:
        host.install_stop_handlers(stop)
        assert set(installed) == {2, SIGBREAK} and SIGBREAK == 21
        installed[SIGBREAK](SIGBREAK, None)
        assert stop.is_set()
    finally:
        unregister_stop_event(stop)


def test_a_service_stop_request_reaches_a_forwarder_running_on_another_thread():
    """The service manager's thread can install no signal handler: the stop request is the only way in."""
    installed = {}
    host = windows(set_signal_handler=installed.__setitem__)
    stop = threading.Event()
    thread = threading.Thread(target=host.install_stop_handlers, args=(stop,))
    thread.start()
    thread.join()
    try:
        assert installed == {}
        assert not stop.is_set()
        request_stop()
        assert stop.is_set()
    finally:
        unregister_stop_event(stop)


def test_installed_paths_per_platform():
    assert platform_named("linux").installed_paths().as_arguments() == [
        "--path.home", "/usr/share/forwarder", "--path.config", "/etc/forwarder",
        "--path.data", "/var/lib/forwarder", "--path.logs", "/var/log/forwarder"]
    paths = windows(environ={"PROGRAMDATA": r"D:\ProgramData"}).installed_paths()
    assert (paths.config, paths.data, paths.logs) == (PureWindowsPath(r"D:\ProgramData\forwarder\config"),
                                                     PureWindowsPath(r"D:\ProgramData\forwarder\data"),
                                                     PureWindowsPath(r"D:\ProgramData\forwarder\logs"))
    assert windows(environ={}).installed_paths().home == PureWindowsPath(r"C:\ProgramData\forwarder")
    assert isinstance(platform_named("posix").installed_paths().data, PurePosixPath)


def test_posix_lock_is_exclusive_between_open_files(tmp_path):
    host = platform_named("posix")
    first = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    second = os.open(tmp_path / "lock", os.O_RDWR)
    try:
        assert host.try_lock_exclusive(first) is True
        assert host.try_lock_exclusive(second) is False
    finally:
        os.close(first)
        os.close(second)


def test_only_linux_offers_the_kernel_drop_counter():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert windows().enable_kernel_drop_counter(sock) is False
        assert platform_named("posix").enable_kernel_drop_counter(sock) is False
        assert platform_named("linux").enable_kernel_drop_counter(sock) is (sys.platform.startswith("linux"))
    assert platform_named("linux").kernel_drops([(socket.SOL_SOCKET, 40, (7).to_bytes(4, sys.byteorder))]) == 7
    assert windows().kernel_drops([(socket.SOL_SOCKET, 40, b"\x07\x00\x00\x00")]) is None


def test_service_host_command_names_python_for_a_pip_install_and_the_exe_when_frozen():
    paths = windows(environ={"PROGRAMDATA": r"C:\ProgramData"}).installed_paths()
    frozen = service_host_command(r"C:\Program Files\forwarder\forwarder.exe", True, paths)
    assert frozen[:3] == [r"C:\Program Files\forwarder\forwarder.exe", "service", "host"]
    base = "C:\\ProgramData\\forwarder"
    assert frozen[3:] == ["--path.home", base, "--path.config", base + "\\config", "--path.data", base + "\\data",
                          "--path.logs", base + "\\logs"]
    assert service_host_command(r"C:\Python311\python.exe", False, paths)[:5] == [
        r"C:\Python311\python.exe", "-m", "forwarder", "service", "host"]


def test_install_registers_delayed_start_recovery_actions_and_an_acl():
    paths = windows(environ={}).installed_paths()
    commands = install_commands([r"C:\Program Files\forwarder\forwarder.exe", "service", "host"], paths)
    create = commands[0]
    assert create[:4] == ["sc.exe", "create", "forwarder", "binPath="]
    assert create[4] == r'"C:\Program Files\forwarder\forwarder.exe" service host'
    assert create[5:7] == ["start=", "delayed-auto"]
    assert ["sc.exe", "failure", "forwarder", "reset=", "86400", "actions=",
            "restart/5000/restart/30000/restart/60000"] in commands
    assert ["sc.exe", "failureflag", "forwarder", "1"] in commands
    acl = next(command for command in commands if command[0] == "icacls")
    assert acl[1] == r"C:\ProgramData\forwarder" and "/inheritance:r" in acl
    assert control_command("status") == ["sc.exe", "query", "forwarder"]
    assert control_command("uninstall") == ["sc.exe", "delete", "forwarder"]


def test_service_control_commands_run_in_order_and_a_failure_is_exit_1():
    ran = []
    host = windows(environ={})
    options = options_from(build_parser().parse_args(["service", "stop"]))
    assert run_service_command("stop", options, main, host, run=lambda command: ran.append(command) or 0) == 0
    assert run_service_command("uninstall", options, main, host, run=lambda command: ran.append(command) or 0) == 0
    assert ran == [["sc.exe", "stop", "forwarder"], ["sc.exe", "stop", "forwarder"], ["sc.exe", "delete", "forwarder"]]
    assert run_service_command("start", options, main, host, run=lambda command: 1060) == 1


def test_service_host_runs_forwarder_run_with_the_paths_of_its_command_line():
    paths = windows(environ={}).installed_paths()
    args = build_parser().parse_args(["service", "host", "--path.data", r"E:\forwarder\data", "-E", "name=x",
                                      "-c", "filebeat.yml"])
    assert args.action == "host"
    assert host_run_arguments(options_from(args), paths) == [
        "run", "--path.home", r"C:\ProgramData\forwarder", "--path.config", r"C:\ProgramData\forwarder\config",
        "--path.data", r"E:\forwarder\data", "--path.logs", r"C:\ProgramData\forwarder\logs",
        "-c", "filebeat.yml", "-E", "name=x"]


@pytest.mark.parametrize("action", ["install", "status"])
def test_service_on_linux_is_one_line_pointing_at_systemd(tmp_path, action):
    result = subprocess.run([sys.executable, "-m", "forwarder", "service", action], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Windows service" in lines[0] and "systemctl enable --now forwarder" in lines[0]


class FakeWinreg:
    """The few `winreg` names host metadata reads, over a dict standing for HKLM's CurrentVersion key."""

    HKEY_LOCAL_MACHINE = object()

    def __init__(self, values: dict | None) -> None:
        self.values = values

    def OpenKey(self, root, path):
        if self.values is None or root is not self.HKEY_LOCAL_MACHINE or not path.endswith("CurrentVersion"):
            raise FileNotFoundError(path)
        return contextlib.nullcontext(self.values)

    def QueryValueEx(self, key, name):
        if name not in key:
            raise FileNotFoundError(name)
        return key[name], 1


def test_windows_product_comes_from_the_registry_and_is_none_when_it_cannot_be_read():
    values = {"ProductName": "Windows Server 2022 Datacenter", "CurrentBuild": "20348", "UBR": 2340}
    assert windows(winreg=FakeWinreg(values)).windows_product() == ("Windows Server 2022 Datacenter", "20348.2340")
    assert windows(winreg=FakeWinreg(None)).windows_product() is None
    assert windows(winreg=FakeWinreg({"ProductName": "x"})).windows_product() is None
    assert platform_named("linux").windows_product() is None


def test_the_syslog_input_imports_where_the_socket_module_has_no_linux_flags():
    """Windows' socket module has no MSG_DONTWAIT (and maybe no MSG_TRUNC): only the Linux path may need them."""
    script = (
        "import socket\n"
        "for name in ('MSG_DONTWAIT', 'MSG_TRUNC'):\n"
        "    delattr(socket, name)\n"
        "import forwarder.inputs.syslog\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.strip() == "ok", result.stderr
