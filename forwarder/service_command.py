"""`forwarder service install|uninstall|start|stop|status`: the Windows service, managed like Filebeat's.

Filebeat's users run `install-service-filebeat.ps1`, which registers
`filebeat.exe` with the service manager; here `forwarder service install`
does the same with `sc.exe`, and also sets what Filebeat's script leaves
to the operator: delayed automatic start, restart on failure (recovery
actions), the ProgramData directories and an ACL limiting them to SYSTEM and
Administrators (the config holds credentials).

The service manager starts `forwarder.exe service host --path.home …`
(`service host` is not for people: it hands the process to the service
manager, see `forwarder/platform/windows_service.py`), which runs
`forwarder run` with the ProgramData paths and stops it on the service stop
request the way SIGTERM does.

On Linux the packages install a systemd unit instead; this command says so
in one line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from forwarder.config.settings import CliOptions
from forwarder.platform import InstalledPaths, Platform, current_platform

SERVICE_NAME = "forwarder"
DISPLAY_NAME = "forwarder (security log forwarder)"
DESCRIPTION = "Ships security logs to Logstash; a drop-in replacement for Filebeat."
# Restart 5 s, 30 s, then 60 s after each failure; the failure count resets after a day without one.
RECOVERY_ACTIONS = "restart/5000/restart/30000/restart/60000"
RECOVERY_RESET_SECONDS = 86400
ACTIONS = ("install", "uninstall", "start", "stop", "status")
LINUX_HINT = ("`forwarder service` manages the Windows service; on Linux the .deb/.rpm install the systemd unit "
              "forwarder.service: run `systemctl enable --now forwarder` (see packaging/README.md)")

Runner = Callable[[Sequence[str]], int]


def add_service_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    service = commands.add_parser("service", parents=[common], help="install and control the Windows service")
    service.add_argument("action", choices=[*ACTIONS, "host"], metavar="{" + ",".join(ACTIONS) + "}")


def service_host_command(executable: str, frozen: bool, paths: InstalledPaths) -> list[str]:
    """What the service manager starts: the frozen `forwarder.exe`, or python.exe with `-m forwarder`.

    A pip-installed `forwarder.exe` is a launcher that starts python.exe as a
    child, and only the process the service manager started may talk to it, so
    that case names python.exe itself.
    """
    program = [executable] if frozen else [executable, "-m", "forwarder"]
    return [*program, "service", "host", *paths.as_arguments()]


def install_commands(host_command: list[str], paths: InstalledPaths) -> list[list[str]]:
    """The `sc.exe` and `icacls` commands `service install` runs, in order."""
    return [
        ["sc.exe", "create", SERVICE_NAME, "binPath=", subprocess.list2cmdline(host_command),
         "start=", "delayed-auto", "DisplayName=", DISPLAY_NAME],
        ["sc.exe", "description", SERVICE_NAME, DESCRIPTION],
        ["sc.exe", "failure", SERVICE_NAME, "reset=", str(RECOVERY_RESET_SECONDS), "actions=", RECOVERY_ACTIONS],
        # Also restart when the service stops with an error status, not only when its process dies.
        ["sc.exe", "failureflag", SERVICE_NAME, "1"],
        ["icacls", str(paths.home), "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F",
         "/grant:r", "*S-1-5-32-544:(OI)(CI)F"],
    ]


def control_command(action: str) -> list[str]:
    """`sc.exe` for start, stop, status (query) and uninstall (delete)."""
    verb = {"start": "start", "stop": "stop", "status": "query", "uninstall": "delete"}[action]
    return ["sc.exe", verb, SERVICE_NAME]


def host_run_arguments(options: CliOptions, paths: InstalledPaths) -> list[str]:
    """`forwarder run` with the --path.*, -c and -E flags of the service's command line (ProgramData paths by default).

    The paths are on the service's command line (as in Filebeat's service), so
    an operator who moves the data directory edits them there.
    """
    given = {"home": options.path_home, "config": options.path_config, "data": options.path_data,
             "logs": options.path_logs}
    defaults = {"home": paths.home, "config": paths.config, "data": paths.data, "logs": paths.logs}
    arguments = ["run"]
    for name in ("home", "config", "data", "logs"):
        arguments += [f"--path.{name}", str(given[name] or defaults[name])]
    for config_file in options.config_files:
        arguments += ["-c", config_file]
    for assignment in options.overrides:
        arguments += ["-E", assignment]
    return arguments


def run_service_command(action: str, options: CliOptions, forwarder_main: Callable[[list[str]], int],
                        platform: Platform | None = None, run: Runner | None = None) -> int:
    """`forwarder_main` is `forwarder.cli.main`, which the service host runs as `forwarder run …`."""
    host = platform or current_platform()
    if host.name != "windows":
        print(f"error: {LINUX_HINT}", file=sys.stderr)
        return 1
    run = run or _run_command
    paths = host.installed_paths()
    if action == "host":
        from forwarder.platform.windows_service import host_service
        return host_service(host_run_arguments(options, paths), forwarder_main)
    if action == "install":
        _make_directories(paths)
        frozen = bool(getattr(sys, "frozen", False))
        for command in install_commands(service_host_command(sys.executable, frozen, paths), paths):
            if run(command) != 0:
                return 1
        print(f"service {SERVICE_NAME} installed: config in {paths.config}, data in {paths.data}, logs in "
              f"{paths.logs}; start it with `forwarder service start`")
        return 0
    if action == "uninstall":
        run(control_command("stop"))
    return 0 if run(control_command(action)) == 0 else 1


def _make_directories(paths: InstalledPaths) -> None:
    """The ProgramData directories, with the config shipped in the PyInstaller build copied when none is there."""
    for directory in (paths.config, paths.data, paths.logs):
        Path(directory).mkdir(parents=True, exist_ok=True)
    # PyInstaller 6 puts data files in the build's contents directory (sys._MEIPASS), not beside the exe.
    shipped = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    if not Path(paths.config, "forwarder.yml").exists() and (shipped / "forwarder.yml").exists():
        shutil.copy2(shipped / "forwarder.yml", Path(paths.config, "forwarder.yml"))
    if not Path(paths.config, "modules.d").exists() and (shipped / "modules.d").is_dir():
        shutil.copytree(shipped / "modules.d", Path(paths.config, "modules.d"))


def _run_command(command: Sequence[str]) -> int:
    print("> " + subprocess.list2cmdline(list(command)))
    return subprocess.run(list(command), check=False).returncode
