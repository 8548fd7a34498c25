"""queue.disk on a filesystem smaller than its max_size: a full disk pauses the inputs, and recovers.

The test mounts a 4 MiB tmpfs (it needs root; otherwise it is skipped and
says why) as `queue.disk.path`, with `max_size` far above it, and lets the
real forwarder read a 12 MB file while the Logstash receiver is down. The
disk fills: /stats counts write errors, one warning names the path, the
filestream input waits (nothing is dropped, the process stays up). Once the
receiver is back it drains the segments, space returns, the writes resume,
and every line arrives.
"""

from __future__ import annotations

import subprocess

import pytest

from forwarder.pipeline.disk_segments import scan_segment, segment_ids, segment_name
from tests.fakes.lumberjack_server import LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, wait_until
from tests.integration.test_disk_queue_outage import Received, free_port, get_stats, try_stats

LINES = 24_000
LINE_PAYLOAD = 480

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: filler
        paths: ["{file}"]
        prospector.scanner.check_interval: 0.1s
    queue.disk:
      path: {queue_path}
      max_size: 64MiB
      segment_size: 1MiB
      write_ahead: 512
      compression: none
      retry_interval: 0.1s
      max_retry_interval: 0.5s
    output.logstash:
      hosts: ["{address}"]
      timeout: 5s
      backoff.init: 0.2s
      backoff.max: 1s
    http.enabled: true
    http.host: 127.0.0.1
    http.port: {http_port}
    logging.metrics.enabled: false
"""


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_filesystem_pauses_the_input_counts_write_errors_and_recovers(tmp_path, tiny_filesystem):
    source = tmp_path / "filler.log"
    with open(source, "w") as handle:
        handle.write("".join(f"file {n} {'z' * LINE_PAYLOAD}\n" for n in range(LINES)))
    queue_path = tiny_filesystem / "queue"
    http_port = free_port()
    received = Received()
    with LumberjackServer(store_events=False, decode_json=False, on_window=received) as server:
        server.stop_listening()
        forwarder = ForwarderProcess(tmp_path / "home", CONFIG.format(
            file=source, queue_path=queue_path, address=server.address, http_port=http_port)).start()
        try:
            wait_until(lambda: try_stats(http_port), 60, "/stats of the started forwarder")
            full = wait_until(lambda: (lambda s: s if s["queue"]["write_errors"] >= 3 else None)(
                get_stats(http_port)), 60, "write errors on the full filesystem")
            filler = full["inputs"]["filler"]
            assert filler["published"] < LINES and filler["dropped"] == 0
            # What is on the 4 MiB disk, plus at most one write-ahead of events waiting in memory (~1.1 KB each).
            assert full["queue"]["bytes"] < (4 << 20) + 512 * 2048, full["queue"]
            # The input waits: while the disk keeps refusing, the input publishes no more than one write-ahead.
            later = wait_until(lambda: (lambda s: s if s["queue"]["write_errors"] >= full["queue"]["write_errors"] + 3
                                        else None)(get_stats(http_port)), 30, "more retries of the full disk")
            assert later["inputs"]["filler"]["published"] - filler["published"] <= 512
            assert later["inputs"]["filler"]["acked"] == filler["acked"], "nothing new is durable on a full disk"
            assert forwarder.alive()
            warnings = [line["message"] for line in forwarder.log_lines()
                        if "No space left on device" in line.get("message", "")]
            assert len(warnings) == 1 and str(queue_path) in warnings[0], warnings

            server.resume_listening()
            wait_until(lambda: len(received.distinct("file")) >= LINES, 120, f"all {LINES} lines at the receiver")
            drained = wait_until(lambda: (lambda s: s if s["queue"]["events"] == 0 else None)(get_stats(http_port)),
                                 30, "the queue drained")
            assert drained["inputs"]["filler"]["dropped"] == 0
            assert drained["queue"]["segments"] <= 2
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.errors == []
    assert received.distinct("file") == set(range(LINES))
    for segment in segment_ids(queue_path):
        assert scan_segment(queue_path / segment_name(segment)).damage is None
