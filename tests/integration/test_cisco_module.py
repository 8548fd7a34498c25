"""The cisco module's umbrella fileset as a site runs it: module files loaded by the real forwarder process.

A Filebeat-style cisco.yml (SQS) must load unchanged, the shipped file loads once enabled, and a bucket
in moto's S3 with Umbrella's layout comes out of the file output mapped onto ECS, a multi-line audit
record as one event and a broken row tagged, not lost.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
SECRET = "Umbrella/Secret+Key-From-The-Dashboard"
BUCKET = "cisco-managed-us-east-1"
PREFIX = "1234567_0123456789abcdef0123456789abcdef01234567"

pytestmark = pytest.mark.skipif(
    not any(point.name == "aws-s3" for point in entry_points(group="forwarder.inputs")),
    reason="the aws-s3 input (issue 10, helpers A/B) is not registered in this install yet")

FILEBEAT_CISCO_YML = f"""\
- module: cisco
  umbrella:
    enabled: true
    var.input: aws-s3
    var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella-logs
    var.access_key_id: AKIAIOSFODNN7EXAMPLE
    var.secret_access_key: "{SECRET}"
    var.visibility_timeout: 300s
    var.api_timeout: 120s
    var.tags: [cisco-umbrella, forwarded]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def forwarder(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forwarder", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_filebeat_style_cisco_yml_loads_unchanged(tmp_path: Path) -> None:
    write(tmp_path / "modules.d" / "cisco.yml", FILEBEAT_CISCO_YML)
    write(tmp_path / "filebeat.yml", "filebeat.config.modules:\n  path: ${path.config}/modules.d/*.yml\n"
                                     "output.logstash:\n  hosts: [\"127.0.0.1:5044\"]\n")
    result = forwarder("test", "config", "-c", "filebeat.yml", "--path.home", str(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr
    broken = FILEBEAT_CISCO_YML.replace("var.queue_url:", "var.queue_ulr:")
    write(tmp_path / "modules.d" / "cisco.yml", broken)
    result = forwarder("test", "config", "-c", "filebeat.yml", "--path.home", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "0.umbrella.var.queue_ulr: unknown setting (did you mean '0.umbrella.var.queue_url'?)" in result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout


def test_shipped_file_enables_and_loads_with_the_keys_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path / "forwarder.yml", "output.file:\n  path: ${path.data}/events\n")
    (tmp_path / "modules.d").mkdir()
    shutil.copy(REPO / "modules.d" / "cisco.yml.disabled", tmp_path / "modules.d" / "cisco.yml.disabled")
    assert forwarder("modules", "enable", "cisco", cwd=tmp_path).returncode == 0
    keys = {"UMBRELLA_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "UMBRELLA_SECRET_ACCESS_KEY": SECRET}
    result = forwarder("test", "config", cwd=tmp_path, env=keys)
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr


DNS_ROWS = [
    f'"2024-06-10 10:{minute:02d}:00","laptop-{minute}","laptop-{minute},HQ","10.0.0.{minute}","198.51.100.7",'
    f'"Allowed","1 (A)","NOERROR","host{minute}.example.com.","Business","Roaming Computers",'
    '"Roaming Computers,Sites",""'
    for minute in range(20)
]
AUDIT_RECORD = ('"1234567892","2024-06-10 10:05:00","admin@example.com","Admin User","roamingdevices","delete",'
                '"81.2.69.144","deviceKey: 1111::2222222\nlabel: 1787\nbundle: minimal\n",""')
FIREWALL_ROW = ('"2024-06-10 10:06:00","[211039844]","Passive Monitor","CDFW Tunnel Device","OUTBOUND","6","84",'
                '"172.17.3.4","51000","146.112.255.129","443","ams1.edc","12","BLOCK","google.com","44"')
BROKEN_ROW = '"2024-06-10 10:07:00","too","few"'


def test_umbrella_bucket_in_s3_comes_out_mapped(tmp_path: Path) -> None:
    objects = {
        f"{PREFIX}/dnslogs/2024-06-10/2024-06-10-10-10-a1b2.csv.gz": "\n".join(DNS_ROWS[:10]) + "\n",
        f"{PREFIX}/dnslogs/2024-06-10/2024-06-10-10-20-zz9c.csv.gz": "\n".join([*DNS_ROWS[10:], BROKEN_ROW]) + "\n",
        f"{PREFIX}/auditlogs/2024-06-10/2024-06-10-10-10-q7w8.csv.gz": AUDIT_RECORD + "\n" + AUDIT_RECORD.replace(
            "1234567892", "1234567893") + "\n",
        f"{PREFIX}/cloudfirewalllogs/2024-06-10/2024-06-10-10-10-k3j4.csv.gz": FIREWALL_ROW + "\n",
    }
    home = tmp_path / "home"
    with MotoServer() as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for key, text in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(text.encode()))
        write(home / "modules.d" / "cisco.yml", f"""\
- module: cisco
  umbrella:
    var.non_aws_bucket_name: {BUCKET}
    var.bucket_list_prefix: {PREFIX}
    var.bucket_list_interval: 1s
    var.endpoint: {aws.endpoint}
    var.path_style: true
    var.region: {REGION}
    var.access_key_id: {ACCESS_KEY_ID}
    var.secret_access_key: {SECRET_ACCESS_KEY}
""")
        process = ForwarderProcess(home, """
            filebeat.config.modules.path: ${path.config}/modules.d/*.yml
            queue.mem.flush.timeout: 10ms
            output.file.path: ${path.data}/events
            logging.metrics.enabled: false
            """).start()
        try:
            events = wait_until(lambda: len(output_events(home)) >= 24 and output_events(home), 60,
                                "every Umbrella row in the output")
        finally:
            process.terminate()
    assert len(events) == 24, [event["message"] for event in events]
    by_message = {event["message"]: event for event in events}
    dns = by_message[DNS_ROWS[3]]
    assert dns["@timestamp"] == "2024-06-10T10:03:00.000Z"
    assert dns["dns"]["question"]["name"] == "host3.example.com"
    assert dns["source"]["ip"] == "10.0.0.3" and dns["source"]["nat"]["ip"] == "198.51.100.7"
    assert dns["host"]["name"] == "laptop-3" and dns["network"]["name"] == ["HQ"]
    assert dns["event"]["module"] == "cisco" and dns["event"]["dataset"] == "cisco.umbrella"
    assert dns["event"]["action"] == "dns-request-Allowed" and dns["fileset"]["name"] == "umbrella"
    assert dns["tags"] == ["cisco-umbrella", "forwarded"]
    audits = sorted((event for event in events if event["fileset"]["name"] == "umbrella"
                     and "audit" in event.get("cisco", {}).get("umbrella", {})), key=lambda e: e["event"]["id"])
    assert [audit["message"] for audit in audits] == [
        AUDIT_RECORD, AUDIT_RECORD.replace("1234567892", "1234567893")], "one event per multi-line record"
    assert audits[0]["cisco"]["umbrella"]["audit"]["before_values"] == {
        "deviceKey": "1111::2222222", "label": "1787", "bundle": "minimal"}
    firewall = by_message[FIREWALL_ROW]
    assert firewall["event"]["action"] == "fw-connection-BLOCK" and firewall["destination"]["port"] == 443
    broken = by_message[BROKEN_ROW]
    assert broken["tags"] == ["_parse_failure", "cisco-umbrella", "forwarded"]
    assert "dnslogs row has 3 columns, expected at least 10" in broken["error"]["message"]
