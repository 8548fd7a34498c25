"""`/stats` has no authentication: a `http.host` other machines can reach is warned about.

The warning comes once at start (in the log) and from `forwarder test config`; a
loopback host, or the endpoint disabled, gives none.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.forwarder_process import ForwarderProcess

WARNING = "serves the unauthenticated /stats endpoint to other machines"


def config(http: str) -> str:
    return textwrap.dedent("""
        output.file.path: ${path.data}/events
        forwarder.inputs:
          - type: syslog
            protocol.udp.host: "127.0.0.1:0"
        """) + textwrap.dedent(http)


def run_test_config(home: Path, text: str) -> subprocess.CompletedProcess:
    path = home / "forwarder.yml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "--path.home", str(home)], cwd=home,
                          capture_output=True, text=True, timeout=60, check=False)




@pytest.mark.parametrize("host", ["0.0.0.0", "'::'", "192.0.2.10", '""'])
def test_test_config_warns_about_a_host_other_machines_can_reach(tmp_path, host):
    result = run_test_config(tmp_path, config(f"http.enabled: true\nhttp.host: {host}\nhttp.port: 5066\n"))
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and WARNING in lines[0], lines
    assert "http.host" in lines[0] and "localhost" in lines[0] and "5066" in lines[0]


@pytest.mark.parametrize("http", [
    "http.enabled: true\nhttp.host: 127.0.0.1\n", "http.enabled: true\nhttp.host: localhost\n",
    "http.enabled: true\nhttp.host: '::1'\n", "http.enabled: true\n", "http.enabled: false\nhttp.host: 0.0.0.0\n",
])
def test_no_warning_for_loopback_or_a_disabled_endpoint(tmp_path, http):
    result = run_test_config(tmp_path, config(http))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "Config OK", "")


def test_the_running_forwarder_warns_at_start(tmp_path):
    forwarder = ForwarderProcess(tmp_path, config("http.enabled: true\nhttp.host: 0.0.0.0\nhttp.port: 0\n")).start()
    try:
        line = forwarder.wait_for_log(WARNING)
        assert line["log.level"] == "WARNING" and "http.host: '0.0.0.0'" in line["message"]
        forwarder.wait_for_log("forwarder started")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
