"""A filebeat.yml as vendor guides print it runs unchanged and Logstash receives what Filebeat sends."""

from __future__ import annotations

from tests.fakes.lumberjack_server import LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess

VENDOR_GUIDE_FILEBEAT_YML = """
filebeat.inputs:
- type: filestream
  id: app-logs
  enabled: true
  paths:
    - {logs}/*.log
  fields:
    log_type: edr
    customer: acme
  fields_under_root: true
  prospector.scanner.check_interval: 200ms

filebeat.config.modules:
  path: ${{path.config}}/modules.d/*.yml
  reload.enabled: false

setup.template.settings:
  index.number_of_shards: 1

processors:
  - rename:
      fields:
        - from: "agent"
          to: "beat_agent"
      ignore_missing: true
  - rename:
      fields:
        - from: "log.file.path"
          to: "source"
      ignore_missing: true
  - add_host_metadata:
      when.not.contains.tags: forwarded

output.logstash:
  hosts: ["{address}"]
"""


def test_vendor_guide_filebeat_yml_runs_unchanged(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "edr.log").write_text('{"event": "process_start", "pid": 4242}\n')
    with LumberjackServer() as server:
        forwarder = ForwarderProcess(tmp_path, VENDOR_GUIDE_FILEBEAT_YML.format(logs=logs, address=server.address))
        forwarder.config_path.rename(tmp_path / "filebeat.yml")
        forwarder.config_path = tmp_path / "filebeat.yml"
        forwarder.start()
        try:
            event = server.wait_for_events(1, timeout=30)[0]
            warning = forwarder.wait_for_log("setup.*: ignored")
            assert warning["log.level"] == "WARNING"
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert event["message"] == '{"event": "process_start", "pid": 4242}'
    assert event["source"] == str(logs / "edr.log")
    assert "path" not in event["log"]["file"]
    assert "agent" not in event
    assert event["beat_agent"]["type"] == "filebeat"
    assert event["log_type"] == "edr" and event["customer"] == "acme"
    assert event["host"]["name"] and event["host"]["os"]
    assert event["input"] == {"type": "filestream"}
    assert event["@metadata"]["beat"] == "filebeat" and event["@metadata"]["type"] == "_doc"
    assert event["@timestamp"].endswith("Z")
