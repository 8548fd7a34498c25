"""Records whose own `host`, `input` or `tags` are not what the forwarder adds to: kept, never a stuck file.

A JSON line with `"host": "a string"` once made the pipeline raise while adding `host.name`: in one
process the input failed, restarted and read the same line again forever; with workers the line was
dropped. Filebeat keeps a record's own non-object value and fills only objects and gaps.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.forwarder_process import output_events

CONFIG = """\
filebeat.inputs:
- type: filestream
  id: shapes
  paths: ["{home}/records.ndjson"]
  tags: ["configured"]
  parsers:
    - ndjson:
        target: ""
queue.mem.flush.timeout: 50ms
output.file:
  path: ${{path.data}}/events
"""

RECORDS = [
    '{"n": 1, "host": "a string"}',
    '{"n": 2, "input": null}',
    '{"n": 3, "tags": "one"}',
    '{"n": 4, "host": ["a", "list"], "input": 7, "tags": 5}',
    '{"n": 5, "host": {"ip": "10.0.0.1"}, "input": {"id": "x"}, "tags": ["kept"]}',
    '{"n": 6, "tags": null}',
]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_record_s_own_host_input_and_tags_of_any_shape_are_kept(tmp_path, workers):
    (tmp_path / "records.ndjson").write_text("".join(line + "\n" for line in RECORDS))
    config = tmp_path / "forwarder.yml"
    config.write_text(CONFIG.format(home=tmp_path))
    os.chmod(config, 0o600)
    result = subprocess.run([sys.executable, "-m", "forwarder", "-e", "-c", str(config), "--path.home", str(tmp_path),
                             "--once"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "FORWARDER_WORKERS": workers})
    assert result.returncode == 0, result.stderr[-3000:]
    events = {event["n"]: event for event in output_events(tmp_path)}
    assert sorted(events) == [1, 2, 3, 4, 5, 6]
    assert events[1]["host"] == "a string" and events[1]["input"] == {"type": "filestream"}
    assert events[2]["input"] is None and "name" in events[2]["host"]
    assert events[3]["tags"] == ["one", "configured"]
    assert events[4]["host"] == ["a", "list"] and events[4]["input"] == 7 and events[4]["tags"] == [5, "configured"]
    assert events[5]["host"]["ip"] == "10.0.0.1" and "name" in events[5]["host"]
    assert events[5]["input"] == {"id": "x", "type": "filestream"} and events[5]["tags"] == ["kept", "configured"]
    assert events[6]["tags"] == ["configured"]
    assert "build_failures" not in result.stderr and "Traceback" not in result.stderr
