"""The crowdstrike module's falcon fileset: connector events (tests/fixtures/crowdstrike) framed by the module's
parser and mapped by its processor, one test per metadata.eventType."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import build_chain, parse_parsers
from forwarder.modules.crowdstrike import MODULE_TYPE
from forwarder.modules.crowdstrike_falcon_ecs import epoch_seconds
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.schema.section import Problem, Section

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crowdstrike"
CUSTOMER = "8f6a2c1e4b7d4e0f9a3b5c7d9e1f2a3b"


def fileset(module_text: str = "- module: crowdstrike\n  falcon:\n    enabled: true\n"):
    problems: list[Problem] = []
    [item] = yaml.safe_load(module_text)
    entry = Section(expand_dotted(item), "0", "modules.d/crowdstrike.yml", problems)
    entry.string("module")
    inputs = MODULE_TYPE.expand(entry)
    assert problems == []
    return inputs


def read_events(data: bytes, module_text: str | None = None) -> list[Event]:
    """The bytes through the module's parser (as the filestream input runs it) and then its processors."""
    [falcon] = fileset(module_text) if module_text else fileset()
    problems: list[Problem] = []
    chain = build_chain(parse_parsers(Section(falcon.section.data, "", "test", problems)), 10 << 20)
    assert problems == []
    records, offset = [], 0
    for line in data.split(b"\n")[:-1]:
        records.extend(chain.feed(Message(line.decode(), offset, offset + len(line) + 1, len(line)), 0.0))
        offset += len(line) + 1
    events = []
    for record in records:
        fields: dict[str, Any] = dict(record.fields)
        if record.content:
            fields["message"] = record.content
        if record.tags:
            fields["tags"] = list(record.tags)
        event = Event(fields, meta={"_id": f"file-{record.offset}"})
        for processor in falcon.processors:
            event = processor(event)
        events.append(event)
    return events


def mapped(name: str) -> Event:
    [event] = read_events((FIXTURES / f"{name}.json").read_bytes())
    return event


def test_the_module_renders_a_filestream_input_with_the_json_objects_parser():
    [falcon] = fileset()
    assert falcon.input_id == "crowdstrike-falcon"
    assert falcon.section.data["type"] == "filestream"
    assert falcon.section.data["paths"] == ["/var/log/crowdstrike/falconhoseclient/output"]
    assert falcon.section.data["parsers"] == [{"json_objects": {"target": "crowdstrike", "keep_message": False}}]
    assert falcon.module_fields["event"] == {"module": "crowdstrike", "dataset": "crowdstrike.falcon"}
    assert falcon.ingest_pipeline is None
    raw = fileset("- module: crowdstrike\n  falcon:\n    var.normalize: false\n    var.paths: [/x/*]\n")[0]
    assert raw.section.data["parsers"] == [{"json_objects": {"decode": False}}]
    assert raw.section.data["paths"] == ["/x/*"]
    assert raw.ingest_pipeline.endswith("-crowdstrike-falcon-pipeline") and raw.processors == []
    assert fileset("- module: crowdstrike\n  falcon:\n    enabled: false\n") == []


def test_the_shipped_module_file_loads_unchanged():
    text = (Path(__file__).resolve().parents[2] / "modules.d" / "crowdstrike.yml.disabled").read_text()
    [falcon] = fileset(text)
    assert falcon.section.data["paths"] == ["/var/log/crowdstrike/falconhoseclient/output"]


def test_detection_summary_maps_host_user_process_parent_hashes_threat_severity_rule():
    event = mapped("detection_summary")
    f = event.fields
    assert event.meta["_id"] == f"{CUSTOMER}-40961"
    assert event.timestamp == 1600000000.0
    assert f["event"]["kind"] == "alert" and f["event"]["category"] == ["malware"] and f["event"]["type"] == ["info"]
    assert f["event"]["severity"] == 4
    assert f["event"]["action"] == "Prevention, process killed."
    assert f["event"]["reference"].startswith("https://falcon.crowdstrike.com/")
    assert f["host"] == {"name": "FINANCE-WS-12", "domain": "CORP", "id": "1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d",
                         "ip": ["10.20.30.40"], "mac": ["00-50-56-8A-BC-DE"]}
    assert f["user"] == {"name": "alice.smith"}
    assert f["source"] == {"ip": "10.20.30.40"}
    process = f["process"]
    assert process["pid"] == 38684386611 and process["name"] == "powershell.exe"
    assert process["command_line"] == "powershell.exe -nop -w hidden -enc SQBFAFgA"
    assert process["args"] == ["powershell.exe", "-nop", "-w", "hidden", "-enc", "SQBFAFgA"]
    assert process["start"] == format_timestamp(1599999990)
    assert "end" not in process, "a ProcessEndTime of 0 means none"
    assert process["parent"] == {"pid": 38682494050, "executable": "\\Device\\HarddiskVolume2\\Windows\\explorer.exe",
                                 "command_line": "C:\\Windows\\Explorer.EXE", "name": "explorer.exe"}
    assert f["file"]["hash"] == {"sha256": "de96a6e69944335375dc1ac238336066889d9ffc7d73628ef4fe1b1b160ab32c",
                                 "sha1": "6cbce4a295c163791b60fc23d285e6d84f28ee4c",
                                 "md5": "7353f60b1739074eb17c5f4dddefe239"}
    assert f["file"]["name"] == "powershell.exe"
    assert f["file"]["path"].endswith("\\v1.0\\powershell.exe")
    assert f["threat"] == {"framework": "MITRE ATT&CK", "tactic": {"name": ["Execution"], "id": ["TA0002"]},
                           "technique": {"name": ["PowerShell"], "id": ["T1059.001"]}}
    assert f["rule"] == {"name": "Suspicious Activity", "id": "ldt:1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d:38655257584",
                         "description": "A process made a suspicious network connection."}
    assert f["message"] == "A process made a suspicious network connection."
    assert set(f["related"]["hash"]) == set(f["file"]["hash"].values())
    assert f["related"]["user"] == ["alice.smith"] and f["related"]["hosts"] == ["FINANCE-WS-12"]
    left = f["crowdstrike"]["event"]
    assert "ComputerName" not in left and "SHA256String" not in left, "fields moved to ECS leave crowdstrike.event"
    assert left["SeverityName"] == "High" and left["PatternDispositionFlags"]["KillProcess"] is True
    assert "ProcessEndTime" not in left
    assert f["crowdstrike"]["metadata"]["eventCreationTime"] == format_timestamp(1600000000)


def test_epp_detection_summary_any_spelling_is_a_detection():
    f = mapped("epp_detection_summary").fields
    assert f["event"]["kind"] == "alert" and f["event"]["severity"] == 70
    assert f["host"]["name"] == "LAPTOP-JDOE" and f["host"]["id"] == "9b8a7c6d5e4f4a3b2c1d0e9f8a7b6c5d"
    assert f["host"]["ip"] == ["192.168.1.23", "fe80::1c2b:3a4d:5e6f:7a8b"]
    assert f["user"] == {"name": "jdoe", "domain": "CORP"}
    assert f["rule"]["name"] == "MaliciousDocument"
    assert f["threat"]["tactic"]["name"] == ["Initial Access"]
    assert f["event"]["id"] == "9b8a:ind:9b8a7c6d:12884902913-10305-1"
    assert f["process"]["executable"] == '"C:\\Program'
    assert f["file"]["path"].endswith("\\Office16\\winword.exe"), "a FilePath that already ends in the name"


def test_incident_summary():
    event = mapped("incident_summary")
    f = event.fields
    assert f["event"]["kind"] == "alert" and f["event"]["action"] == "incident"
    assert f["event"]["id"] == "inc:1a2b3c:4d5e6f"
    assert f["event"]["start"] == format_timestamp(1686845000), "seconds"
    assert f["event"]["end"] == format_timestamp(1686845100), "milliseconds"
    assert f["host"]["id"] == "9b8a7c6d5e4f4a3b2c1d0e9f8a7b6c5d"
    assert f["user"] == {"name": "analyst", "domain": "example.com", "email": "analyst@example.com"}
    assert f["message"] == "Incident score 38"
    assert "LateralMovement" not in f["crowdstrike"]["event"]


def test_user_activity_audit():
    event = mapped("user_activity_audit")
    f = event.fields
    assert event.meta["_id"] == f"{CUSTOMER}-3"
    assert event.timestamp == 1686845212.4
    assert f["event"] == {"kind": "event", "category": ["iam"], "type": ["change"], "action": "detection_update"}
    assert f["user"] == {"name": "TESTUSERID"} and f["source"] == {"ip": "175.16.199.1"}
    assert f["related"] == {"user": ["TESTUSERID"], "ip": ["175.16.199.1"]}
    assert f["crowdstrike"]["event"]["UTCTimestamp"] == format_timestamp(1686839378)
    assert f["crowdstrike"]["event"]["AuditKeyValues"][1] == {"Key": "new_state", "ValueString": "in_progress"}


@pytest.mark.parametrize("name, action, outcome, category, types", [
    ("auth_activity_audit", "userAuthenticate", "failure", ["authentication"], ["start"]),
    ("auth_activity_change", "grantUserRoles", "success", ["iam"], ["user", "change"]),
])
def test_auth_activity_audit(name, action, outcome, category, types):
    f = mapped(name).fields
    assert f["event"]["action"] == action and f["event"]["outcome"] == outcome
    assert f["event"]["category"] == category and f["event"]["type"] == types
    assert f["user"] == {"name": "jane.admin", "domain": "example.com", "email": "jane.admin@example.com"}
    assert f["source"]["ip"] == "81.2.69.142"
    assert f["message"] == "CrowdStrike Authentication"
    assert f["crowdstrike"]["event"]["Success"] is (outcome == "success")


@pytest.mark.parametrize("name, word", [("remote_response_start", "start"), ("remote_response_end", "end")])
def test_remote_response_sessions(name, word):
    f = mapped(name).fields
    assert f["event"]["category"] == ["network", "session"] and f["event"]["type"] == [word]
    assert f["event"]["action"] == f"remote_response_session_{word}_event"
    assert f["event"][word] == format_timestamp(1686845299 if word == "start" else 1686845899)
    assert f["event"]["id"] == "6f2c1a7e-7d1b-4b8e-9a3f-2c5d8e9f0a1b"
    assert f["host"]["name"] == "FINANCE-WS-12"
    assert f["user"]["email"] == "responder@example.com"


def test_firewall_match():
    f = mapped("firewall_match").fields
    assert f["event"]["category"] == ["network"] and f["event"]["type"] == ["start", "connection", "denied"]
    assert f["event"]["action"] == "firewall_match_event" and f["event"]["code"] == "FirewallRuleApplicationFailed"
    assert f["message"] == "Firewall Rule: 'Block SMB outbound' triggered - Action: 'Blocked'"
    assert f["network"] == {"type": "ipv4", "direction": "egress"}
    assert f["source"] == {"ip": "10.20.30.40", "port": 50123}
    assert f["destination"] == {"ip": "89.160.20.112", "port": 445}
    assert f["process"] == {"pid": 4412, "executable": "\\Device\\HarddiskVolume2\\Windows\\System32\\svchost.exe"}
    assert f["rule"] == {"id": "1234567890", "name": "Block SMB outbound", "ruleset": "Workstations",
                         "description": "No SMB to the internet", "category": "9f8e7d6c"}
    assert f["related"]["ip"] == ["10.20.30.40", "89.160.20.112"]


def test_other_event_types_get_the_generic_fields_and_seconds_are_told_from_milliseconds():
    event = mapped("customer_ioc")
    f = event.fields
    assert event.timestamp == 1686846100.0, "eventCreationTime in seconds"
    assert f["event"] == {"kind": "event"}
    assert f["user"] == {"name": "jdoe"} and f["host"] == {"name": "LAPTOP-JDOE"}
    assert f["crowdstrike"]["event"]["IOCValue"] == "bad.example.net"
    assert event.meta["_id"] == f"{CUSTOMER}-9"


def test_epoch_magnitude():
    assert epoch_seconds(1686845212) == 1686845212.0
    assert epoch_seconds(1686845212400) == 1686845212.4
    assert epoch_seconds("1686845212") == 1686845212.0
    assert epoch_seconds(0) is None and epoch_seconds(True) is None and epoch_seconds("x") is None


def test_all_fixtures_in_one_stream_one_event_each_with_the_raw_text_when_asked():
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    data = b"".join((FIXTURES / f"{name}.json").read_bytes() for name in names)
    module_text = "- module: crowdstrike\n  falcon:\n    var.preserve_original_event: true\n"
    events = read_events(data, module_text)
    assert len(events) == len(names)
    for name, event in zip(names, events, strict=True):
        assert json.loads(event.fields["event"]["original"]) == json.loads((FIXTURES / f"{name}.json").read_text())
        assert "message" not in event.fields or not event.fields["message"].startswith("{")


def test_a_cut_object_passes_the_mapping_raw_and_tagged_and_a_non_event_object_raises():
    data = (FIXTURES / "user_activity_audit.json").read_bytes()
    events = read_events(data[:120] + data)
    assert events[0].fields["tags"] == ["_parse_failure"] and events[0].fields["message"] == data[:120].decode()
    assert events[0].meta["_id"] == "file-0", "the file offset id stays"
    assert events[1].fields["event"]["action"] == "detection_update"
    with pytest.raises(ValueError, match="no `metadata` object"):
        read_events(b'{"hello": "world"}\n')


def test_the_processor_is_usable_from_any_inputs_processors_list():
    build = entry_points(group="forwarder.processors")["crowdstrike_falcon"].load()
    problems: list[Problem] = []
    processor = build(Section({"preserve_original_event": True}, "processors.0.crowdstrike_falcon", "in.yml",
                              problems))
    assert problems == []
    text = (FIXTURES / "auth_activity_audit.json").read_text()
    event = processor(Event({"crowdstrike": json.loads(text), "message": text}))
    assert event.fields["event"]["action"] == "userAuthenticate" and event.fields["event"]["original"] == text
    assert event.meta["_id"] == f"{CUSTOMER}-4"
