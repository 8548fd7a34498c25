"""A filebeat.yml chaining the Filebeat processors added for drop-in use, run by the real forwarder process.

An XML line is decoded and reshaped (decode_xml, urldecode, convert, timestamp, registered_domain,
uppercase), gets a fingerprint, a time zone and an id, and a JavaScript processor drops what it cancels;
the output file shows the result. A config error in a processor is one clear line naming the key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.forwarder_process import output_events

CONFIG = """\
filebeat.inputs:
- type: filestream
  id: app
  paths: ["{home}/logs/*.log"]
  processors:
    - decode_xml: {{field: message, target_field: xml}}
    - urldecode: {{fields: [{{from: xml.event.query, to: url.query}}]}}
    - convert:
        fields: [{{from: xml.event.port, to: destination.port, type: long}}]
    - timestamp:
        field: xml.event.time
        layouts: ['02/Jan/2006:15:04:05 -0700']
        test: ['10/Oct/2000:13:55:36 -0700']
    - registered_domain: {{field: xml.event.host, target_field: url.registered_domain}}
    - uppercase: {{values: [xml.event.user]}}
    - fingerprint: {{fields: [xml.event.user, url.query], target_field: event.hash}}
    - script:
        lang: javascript
        source: >
          function process(event) {{
            if (event.Get("xml.event.user") === "ROBOT") {{ event.Cancel(); return; }}
            event.Tag("scripted");
          }}
processors:
  - add_locale: ~
  - add_id: ~
queue.mem.flush.timeout: 50ms
output.file:
  path: ${{path.data}}/events
"""

LINES = [
    "<event><time>10/Oct/2000:13:55:36 -0700</time><user>alice</user><port>8443</port>"
    "<host>www.example.co.uk</host><query>q%3Da+b</query></event>",
    "<event><time>10/Oct/2000:13:55:37 -0700</time><user>robot</user><port>1</port>"
    "<host>x.example.com</host><query>a</query></event>",
]


def run_once(home: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = home / "filebeat.yml"
    path.write_text(config.format(home=home))
    os.chmod(path, 0o600)
    return subprocess.run([sys.executable, "-m", "forwarder", "-e", "-c", str(path), "--path.home", str(home),
                           "--once"], cwd=home, capture_output=True, text=True, timeout=300, check=False)


def test_the_processor_chain_shapes_and_filters_events_in_the_real_process(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("".join(line + "\n" for line in LINES))
    result = run_once(tmp_path, CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    [event] = output_events(tmp_path)
    assert event["@timestamp"] == "2000-10-10T20:55:36.000Z"
    assert event["xml"]["event"]["user"] == "ALICE"
    assert event["url"] == {"query": "q=a b", "registered_domain": "example.co.uk"}
    assert event["destination"] == {"port": 8443}
    assert len(event["event"]["hash"]) == 64
    assert event["event"]["timezone"][0] in "+-"
    assert "scripted" in event["tags"]
    assert len(event["@metadata"]["_id"]) == 20


def test_a_processor_config_error_is_one_line_naming_the_key(tmp_path):
    (tmp_path / "logs").mkdir()
    broken = CONFIG.replace("layouts: ['02/Jan/2006:15:04:05 -0700']", "layouts: ['2006-01-02']")
    result = run_once(tmp_path, broken)
    assert result.returncode != 0
    assert "timestamp.test: '10/Oct/2000:13:55:36 -0700' does not parse with any of the layouts" in result.stderr
    assert "Traceback" not in result.stderr
