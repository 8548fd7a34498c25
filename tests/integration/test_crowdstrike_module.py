"""The crowdstrike module file as a site uses it, through the real `forwarder` command: the shipped file
enables and loads, a misspelt variable or parser option is one line naming the key, and a file of connector
events comes out of the real process mapped, with the replay-stable id."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "crowdstrike"


def forwarder(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forwarder", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)


def test_the_shipped_file_enables_and_mistakes_are_one_line_naming_the_key(tmp_path):
    write(tmp_path / "forwarder.yml", "forwarder.config.modules.path: ${path.config}/modules.d/*.yml\n"
                                      "output.file:\n  path: ${path.data}/events\n")
    (tmp_path / "modules.d").mkdir()
    shutil.copy(REPO / "modules.d" / "crowdstrike.yml.disabled", tmp_path / "modules.d" / "crowdstrike.yml.disabled")
    assert forwarder("modules", "enable", "crowdstrike", cwd=tmp_path).returncode == 0
    result = forwarder("test", "config", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr
    write(tmp_path / "modules.d" / "crowdstrike.yml",
          "- module: crowdstrike\n  falcon:\n    var.pahts: [/x]\n")
    result = forwarder("test", "config", cwd=tmp_path)
    assert result.returncode == 1
    assert "crowdstrike.yml: 0.falcon.var.pahts: unknown setting (did you mean '0.falcon.var.paths'?)" in (
        result.stderr), result.stderr
    write(tmp_path / "modules.d" / "crowdstrike.yml",
          "- module: crowdstrike\n  falcon:\n    input:\n      parsers: [{json_objects: {max_byte: 1}}]\n")
    result = forwarder("test", "config", cwd=tmp_path)
    assert result.returncode == 1 and "parsers.0.json_objects.max_byte: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr


def test_connector_events_come_out_of_the_real_process_mapped(tmp_path):
    connector = tmp_path / "falconhoseclient"
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    connector.mkdir()
    (connector / "output").write_bytes(b"".join((FIXTURES / f"{name}.json").read_bytes() for name in names))
    home = tmp_path / "home"
    write(home / "modules.d" / "crowdstrike.yml",
          f'- module: crowdstrike\n  falcon:\n    var.paths: ["{connector}/output*"]\n')
    process = ForwarderProcess(home, """
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
        queue.mem.flush.timeout: 10ms
        output.file.path: ${path.data}/events
        logging.metrics.enabled: false
        """).start()
    try:
        events = wait_until(lambda: len(output_events(home)) >= len(names) and output_events(home), 60,
                            "every connector event in the output")
    finally:
        process.terminate()
    assert len(events) == len(names)
    by_type = {e["crowdstrike"]["metadata"]["eventType"]: e for e in events}
    detection = by_type["DetectionSummaryEvent"]
    assert detection["@metadata"]["_id"] == "8f6a2c1e4b7d4e0f9a3b5c7d9e1f2a3b-40961"
    assert detection["@timestamp"] == "2020-09-13T12:26:40.000Z"
    assert detection["event"]["module"] == "crowdstrike" and detection["event"]["dataset"] == "crowdstrike.falcon"
    assert detection["event"]["kind"] == "alert" and detection["file"]["hash"]["md5"]
    assert detection["tags"] == ["crowdstrike-falcon", "forwarded"], detection["tags"]
    assert detection["message"] == "A process made a suspicious network connection."
    assert by_type["AuthActivityAuditEvent"]["event"]["action"] in ("userAuthenticate", "grantUserRoles")
    assert by_type["FirewallMatchEvent"]["destination"] == {"ip": "89.160.20.112", "port": 445}
