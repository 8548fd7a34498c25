"""The Windows service's stop path, run here: `forwarder run` on a non-main thread, stopped by `request_stop`.

On Windows the service manager calls `SvcDoRun` on its own thread, where no
signal handler can be installed, and turns a stop into `request_stop()`
(forwarder/platform/windows_service.py). This child process does the same
on Linux with the real command, so the clean stop (queue drained, registry
written) is checked here; only the pywin32 calls around it are not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

SERVICE_MANAGER = textwrap.dedent("""
    import sys, threading
    from forwarder.cli import main
    from forwarder.platform import request_stop
    status = []
    worker = threading.Thread(target=lambda: status.append(main(sys.argv[1:])))
    worker.start()
    sys.stdin.readline()
    request_stop()
    worker.join(60)
    sys.exit(status[0] if status else 99)
""")

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{source}"]
        prospector.scanner.check_interval: 0.1s
    # Written only at the clean stop: a resumed run that sends nothing twice proves the stop path wrote it.
    forwarder.registry.flush: 1h
    output.file.path: ${{path.data}}/events
"""


def test_a_stop_request_from_another_thread_stops_cleanly_and_writes_the_registry(tmp_path):
    source = tmp_path / "input" / "app.log"
    source.parent.mkdir()
    source.write_text("".join(f"line {n}\n" for n in range(20)))
    forwarder = ForwarderProcess(tmp_path, CONFIG.format(source=source))
    with open(tmp_path / "service.log", "wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-c", SERVICE_MANAGER, "run", "-e", "-c", str(forwarder.config_path),
             "--path.home", str(tmp_path)], cwd=tmp_path, stdin=subprocess.PIPE, stdout=log, stderr=log)
    try:
        wait_until(lambda: len(output_events(tmp_path)) == 20 or service.poll() is not None, 60, "20 events")
        assert service.poll() is None, (tmp_path / "service.log").read_text()
        service.stdin.write(b"stop\n")
        service.stdin.flush()
        assert service.wait(timeout=60) == 0, (tmp_path / "service.log").read_text()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    log_text = (tmp_path / "service.log").read_text()
    assert "stopping: waiting up to" in log_text
    assert "Traceback" not in log_text

    with open(source, "a") as handle:
        handle.write("line 20\n")
    forwarder.start()
    try:
        wait_until(lambda: len(output_events(tmp_path)) >= 21, 60, "the appended line")
        assert forwarder.terminate() == 0
    finally:
        if forwarder.alive():
            forwarder.kill_hard()
    messages = [event["message"] for event in output_events(tmp_path)]
    assert messages == [f"line {n}" for n in range(21)]
