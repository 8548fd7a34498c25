"""The fake Lumberjack server as a separate process, as benchmarks and end-to-end tests run it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash import OUTPUT_TYPE
from forwarder.outputs.logstash.output import LogstashOutput
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue
from forwarder.schema.section import Problem, Section
from forwarder.stats import OutputStats

ROOT = Path(__file__).resolve().parents[2]


def test_the_receiver_process_reports_its_port_counts_and_records_events(tmp_path: Path) -> None:
    events_file = tmp_path / "events.ndjson"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.lumberjack_server", "--port", "0", "--report-interval", "0.05",
         "--events-file", str(events_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        problems: list[Problem] = []
        config = OUTPUT_TYPE.parse_config(Section({"hosts": [f"127.0.0.1:{port}"], "bulk_max_size": 20},
                                                  "output.logstash", "t.yml", problems))
        queue = EventQueue(100, 1 << 20, 1, 0.0)
        for number in range(50):
            queue.put(Event({"message": f"line {number}"}, meta={"_id": str(number)}))
        output = LogstashOutput(config, EventEncoder(), OutputStats("logstash"))
        output.start(queue)
        try:
            deadline = time.monotonic() + 10
            report: dict = {}
            while report.get("events") != 50:
                assert time.monotonic() < deadline, f"last report {report}"
                line = process.stdout.readline()
                report = json.loads(line)
            assert report["windows"] == 3 and report["connections"] == 1 and report["errors"] == 0
            assert report["payload_bytes"] > 0
        finally:
            output.stop(5.0)
        process.send_signal(signal.SIGTERM)
        final = json.loads(process.stdout.read().strip().splitlines()[-1])
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()
    assert final["events"] == 50
    lines = events_file.read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == [f"line {n}" for n in range(50)]
