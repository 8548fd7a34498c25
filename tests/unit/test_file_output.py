"""`output.file` writes Filebeat's JSON, acknowledges only what is on disk, survives a full disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.file import FileOutput, parse_config
from forwarder.pipeline.event import Event
from forwarder.schema.section import Section
from forwarder.stats import OutputStats


def file_output(tmp_path, **overrides):
    problems = []
    config = parse_config(Section({"path": str(tmp_path / "out"), **overrides}, "output.file", "test", problems))
    assert problems == []
    return FileOutput(config, EventEncoder("filebeat"), OutputStats("file"))


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def lines_in(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_events_are_written_as_filebeat_json_and_cursor_committed(tmp_path, harness):
    output = file_output(tmp_path)
    output.start(harness.queue)
    client = harness.connect("filestream", input_id="files")
    for number in range(10):
        client.publish(Event({"message": f"line {number}"}, timestamp=1700000000.5, meta={"_id": f"id-{number}"}),
                       cursor={"source": number})
    current = tmp_path / "out" / "forwarder.ndjson"
    assert wait_for(lambda: len(lines_in(current)) == 10)
    assert wait_for(lambda: harness.registry.get("filestream::files::source") == 9)
    output.stop(2)
    first = lines_in(current)[0]
    assert first["@timestamp"] == "2023-11-14T22:13:20.500Z"
    assert first["@metadata"] == {"beat": "filebeat", "type": "_doc", "version": first["@metadata"]["version"],
                                  "_id": "id-0"}
    assert first["message"] == "line 0"
    assert first["input"] == {"type": "filestream"}
    assert first["agent"]["type"] == "filebeat" and first["ecs"] == {"version": "8.0.0"}
    assert oct(current.stat().st_mode & 0o777) == "0o600"


def test_rotation_keeps_number_of_files(tmp_path, harness):
    output = file_output(tmp_path, rotate_every_kb=1, number_of_files=3)
    output.start(harness.queue)
    client = harness.connect("syslog")
    for number in range(6):
        client.publish(Event({"message": f"{number:04d} " + "x" * 600}))
        assert wait_for(lambda: harness.queue.active_events == 0)
    output.stop(2)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["forwarder.1.ndjson", "forwarder.2.ndjson", "forwarder.ndjson"]
    assert lines_in(tmp_path / "out" / "forwarder.ndjson")[0]["message"].startswith("0005")
    assert lines_in(tmp_path / "out" / "forwarder.2.ndjson")[0]["message"].startswith("0003")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_full_disk_is_retried_without_loss_or_commit(tmp_path, harness):
    out = tmp_path / "out"
    out.mkdir()
    current = out / "forwarder.ndjson"
    current.symlink_to("/dev/full")
    stats = OutputStats("file")
    config = parse_config(Section({"path": str(out), "rotate_on_startup": False, "backoff": {"init": "50ms"}},
                                  "output.file", "t", []))
    output = FileOutput(config, EventEncoder(), stats)
    output.start(harness.queue)
    client = harness.connect("filestream", input_id="f")
    for number in range(5):
        client.publish(Event({"message": str(number)}), cursor={"src": number})
    assert wait_for(lambda: stats.errors >= 2)
    assert harness.registry.get("filestream::f::src") is None, "nothing may be committed while writes fail"
    current.unlink()
    assert wait_for(lambda: harness.registry.get("filestream::f::src") == 4)
    output.stop(2)
    assert [line["message"] for line in lines_in(current)] == ["0", "1", "2", "3", "4"]


def parse_problems(data):
    problems = []
    config = parse_config(Section(data, "output.file", "forwarder.yml", problems))
    return config, [str(p) for p in problems]


def test_permissions_are_read_as_an_octal_mode(tmp_path):
    config, problems = parse_problems({"path": str(tmp_path), "permissions": "0640"})
    assert problems == [] and config.permissions == 0o640
    config, problems = parse_problems({"path": str(tmp_path), "permissions": 0o600})
    assert problems == [] and config.permissions == 0o600
    _, problems = parse_problems({"path": str(tmp_path), "permissions": "rw-r-----"})
    assert problems == ["forwarder.yml: output.file.permissions: expected an octal file mode such as 0600 "
                        "(got 'rw-r-----')"]


def test_a_missing_path_is_one_config_error_line_from_the_real_command(tmp_path):
    config = tmp_path / "forwarder.yml"
    config.write_text("forwarder.inputs:\n  - type: syslog\n    protocol.udp.host: 127.0.0.1:5514\n"
                      "output.file:\n  filename: events\n  rotate_every_kb: 0\n")
    os.chmod(config, 0o600)
    result = subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"config error: {config}: output.file.path: is required (a string)",
        f"config error: {config}: output.file.rotate_every_kb: must be at least 1 (got 0)",
    ]
