"""What an operator looks at: GET /stats, the metrics line, and `forwarder test output`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

from tests.fakes.lumberjack_server import LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.loads(response.read())


def test_stats_endpoint_and_metrics_line_report_inputs_and_output(tmp_path):
    syslog_port, http_port = free_port(), free_port()
    with LumberjackServer() as server:
        forwarder = ForwarderProcess(tmp_path, f"""
            forwarder.inputs:
              - type: syslog
                id: edge-syslog
                protocol.tcp.host: "127.0.0.1:{syslog_port}"
            output.logstash.hosts: ["{server.address}"]
            queue.mem.flush.timeout: 10ms
            http.enabled: true
            http.host: 127.0.0.1
            http.port: {http_port}
            logging.metrics.period: 0.5s
            """).start()
        try:
            forwarder.wait_for_log("listening")
            with socket.create_connection(("127.0.0.1", syslog_port)) as connection:
                connection.sendall(b"".join(b"<13>Nov 22 10:00:00 host app: event %d\n" % n for n in range(25)))
            server.wait_for_events(25)
            stats = wait_until(lambda: (lambda s: s if s["inputs"]["edge-syslog"]["acked"] == 25 else None)(
                get_stats(http_port)), 10, "25 acknowledged events in /stats")
            syslog = stats["inputs"]["edge-syslog"]
            assert syslog["type"] == "syslog" and syslog["state"] == "running"
            assert syslog["published"] == 25 and syslog["in_flight"] == 0 and syslog["errors"] == 0
            assert stats["output"]["type"] == "logstash"
            assert stats["output"]["acked"] == 25 and stats["output"]["batches"] >= 1
            assert stats["registry"]["write_errors"] == 0
            metrics = forwarder.wait_for_log("metrics")
            assert "edge-syslog" in json.dumps(metrics)
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()


def test_test_output_reports_each_host(tmp_path):
    dead_port = free_port()
    config = tmp_path / "forwarder.yml"
    with LumberjackServer() as server:
        config.write_text(f'output.logstash.hosts: ["{server.address}", "127.0.0.1:{dead_port}"]\n')
        config.chmod(0o600)
        result = subprocess.run([sys.executable, "-m", "forwarder", "test", "output", "-c", str(config)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert server.event_count >= 1, "the check makes one real round trip"
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert any(server.address in line and "OK" in line for line in lines), lines
    assert any(str(dead_port) in line and "ERROR" in line for line in lines), lines


def test_a_stats_port_in_use_is_one_line_and_exit_1_before_any_input_starts(tmp_path):
    syslog_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        forwarder = ForwarderProcess(tmp_path, f"""
            forwarder.inputs:
              - type: syslog
                protocol.tcp.host: "127.0.0.1:{syslog_port}"
            output.file.path: ${{path.data}}/events
            http.enabled: true
            http.host: 127.0.0.1
            http.port: {taken_port}
            """).start()
        assert forwarder.process.wait(timeout=60) == 1
    output = forwarder.log_path.read_text()
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot serve /stats on 127.0.0.1:{taken_port}" in errors[0]
    assert "http.enabled: false" in errors[0]
    assert "forwarder started" not in output
