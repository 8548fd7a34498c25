"""`forwarder --once`: file inputs read to the end, everything acknowledged, exit 0 (Filebeat's --once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.forwarder_process import output_events

CONFIG = """\
filebeat.inputs:
- type: filestream
  id: batch
  paths: ["{home}/logs/*.log"]
  harvester_limit: 1
  parsers:
    - multiline:
        type: pattern
        pattern: '^\\s'
        match: after
queue.mem.flush.timeout: 50ms
output.file:
  path: ${{path.data}}/events
"""


def run_once(home: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = home / "filebeat.yml"
    path.write_text(config.format(home=home))
    os.chmod(path, 0o600)
    return subprocess.run([sys.executable, "-m", "forwarder", "-e", "-c", str(path), "--path.home", str(home),
                           "--once"], cwd=home, capture_output=True, text=True, timeout=300, check=False)


def test_once_reads_every_file_to_the_end_waits_for_acks_and_exits_0(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "big.log").write_text("".join(f"big line {n}\n" for n in range(30000)))
    (logs / "small.log").write_text("first\n  continued\nsecond\n")  # the last event is held by multiline
    result = run_once(tmp_path, CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "every input read its files to the end and every event was acknowledged" in result.stderr
    messages = [event["message"] for event in output_events(tmp_path)]
    assert sorted(messages) == sorted([f"big line {n}" for n in range(30000)] + ["first\n  continued", "second"])

    (logs / "small.log").write_text("first\n  continued\nsecond\nthird\n")
    again = run_once(tmp_path, CONFIG)
    assert again.returncode == 0, again.stderr[-3000:]
    messages = [event["message"] for event in output_events(tmp_path)]
    assert len(messages) == 30003 and messages.count("third") == 1 and messages.count("second") == 1


def test_once_refuses_inputs_that_have_no_end(tmp_path):
    config = CONFIG.replace("filebeat.inputs:\n", "filebeat.inputs:\n- type: syslog\n  id: udp-in\n"
                                                  "  protocol.udp.host: '127.0.0.1:0'\n")
    result = run_once(tmp_path, config)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: --once reads file inputs to their end (filestream, log); these inputs have no end: "
        "udp-in (syslog); disable them for this run"]
