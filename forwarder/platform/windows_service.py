"""The Windows service host (pywin32): runs `forwarder run` and turns the service stop request into a clean stop.

Imported only by `forwarder service host` on Windows, the process the
service manager starts. The forwarder runs on the service manager's
thread, where no signal handler can be installed; the stop (and system
shutdown) request calls `request_stop`, the same path SIGTERM takes on
Linux, so inputs stop, queued events get `forwarder.shutdown_timeout` to be
acknowledged and the registry is written before the service reports stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import servicemanager
import win32service
import win32serviceutil

from forwarder.platform.base import request_stop

# How long the service manager is told a stop may take (it asks again after this); shutdown_timeout fits in it.
STOP_WAIT_HINT_MS = 30_000


class ForwarderService(win32serviceutil.ServiceFramework):
    _svc_name_ = "forwarder"
    _svc_display_name_ = "forwarder (security log forwarder)"
    run_arguments: list[str] = []
    # `forwarder.cli.main`, handed in so that the seam imports nothing above it.
    run_forwarder: Callable[[list[str]], int]

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
        request_stop()

    def SvcShutdown(self) -> None:
        self.SvcStop()

    def SvcDoRun(self) -> None:
        status = type(self).run_forwarder(self.run_arguments)
        if status != 0:
            servicemanager.LogErrorMsg(
                f"forwarder exited with status {status}: see the log files under --path.logs, or run "
                f"`forwarder test config {' '.join(self.run_arguments[1:])}`")
            # An exit the service manager did not ask for: the recovery actions set at install restart it.
            os._exit(status)


def host_service(run_arguments: list[str], run_forwarder: Callable[[list[str]], int]) -> int:
    """Hands this process to the service manager; returns when the service has stopped."""
    ForwarderService.run_arguments = run_arguments
    ForwarderService.run_forwarder = run_forwarder
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(ForwarderService)
    servicemanager.StartServiceCtrlDispatcher()
    return 0
