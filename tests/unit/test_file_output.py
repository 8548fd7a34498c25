"""`output.file` writes Filebeat's JSON, acknowledges only what is on disk, survives a full disk."""

from __future__ import annotations

import json
import os
import time

import pytest

from forwarder.schema.section import Section
from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.file import FileOutput, parse_config
from forwarder.pipeline.event import Event
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
