"""The cisco_secure_endpoint processor on the reference's example event and on Beats' Threat Detected shape."""

from __future__ import annotations

import json

import pytest

from forwarder.modules.cisco_secure_endpoint_ecs import UnmappableEvent
from forwarder.modules.cisco_secure_endpoint_processor import cisco_secure_endpoint_processor
from forwarder.pipeline.event import Event

# Elastic's test-cisco-amp8.log event (sources-cisco-defender.md §1.5), values shortened there.
CLOUD_IOC = {
    "id": 6761826132415096000, "timestamp": 1649100900, "timestamp_nanoseconds": 603000000,
    "date": "2022-04-04T19:35:00+00:00", "event_type": "Cloud IOC", "event_type_id": 1107296274,
    "detection": "W32.E6FDBB79FC-90.SBX.TG", "connector_guid": "f1b8f4ab-0a5d-4e1b-8e5c-9d2f1f0c2a11",
    "group_guids": ["b077d6bc-bbdf-42f7-8838-a06053fbd98a"], "severity": "High",
    "start_timestamp": 1649100898, "start_date": "2022-04-04T19:34:58+00:00",
    "computer": {"connector_guid": "f1b8f4ab-0a5d-4e1b-8e5c-9d2f1f0c2a11", "hostname": "SVRP-FIL01.example.com",
                 "external_ip": "81.2.69.144", "active": True,
                 "network_addresses": [{"ip": "10.10.10.10", "mac": "53:74:31:cb:37:50"}],
                 "links": {"computer": "https://api.eu.amp.cisco.com/v1/computers/f1b8",
                           "trajectory": "https://api.eu.amp.cisco.com/v1/computers/f1b8/trajectory",
                           "group": "https://api.eu.amp.cisco.com/v1/groups/b077"}},
    "cloud_ioc": {"description": "A known malicious file was executed", "short_description": "ExecutedMalware.ioc"},
    "file": {"disposition": "Unknown", "file_name": "svchost.exe",
             "file_path": "file:///C%3A/Windows/System32/svchost.exe",
             "identity": {"sha256": "cb19" + "0" * 60}, "parent": {"disposition": "Clean",
                                                                   "identity": {"sha256": "7ef5" + "0" * 60}}},
    "command_line": {"arguments": "C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s NetSetupSvc"},
    "tactics": ["TA0002"],
}


def mapped(record, preserve: bool = False) -> Event:
    event = Event({"message": json.dumps(record)}, 0.0, {}, record=record, record_kind="secure_endpoint")
    return cisco_secure_endpoint_processor(preserve)(event)


def test_the_reference_example_maps_as_elastics_integration_does():
    event = mapped(CLOUD_IOC)
    fields = event.fields
    assert event.timestamp == pytest.approx(1649100900.603)
    assert fields["event"] == {"kind": "alert", "code": "1107296274", "action": "Cloud IOC", "severity": 3,
                               "id": "6761826132415096000", "start": "2022-04-04T19:34:58Z", "category": ["file"]}
    assert fields["host"] == {"name": "SVRP-FIL01.example.com", "hostname": "SVRP-FIL01", "domain": "example.com",
                              "ip": ["10.10.10.10"], "mac": ["53:74:31:cb:37:50"]}
    assert fields["file"] == {"name": "svchost.exe", "path": "file:///C%3A/Windows/System32/svchost.exe",
                              "hash": {"sha256": "cb19" + "0" * 60}}
    assert fields["process"]["hash"] == {"sha256": "7ef5" + "0" * 60}
    assert fields["process"]["command_line"] == CLOUD_IOC["command_line"]["arguments"]
    assert fields["process"]["executable"] == "C:\\Windows\\System32\\svchost.exe"
    assert fields["process"]["args"][1:] == ["-k", "netsvcs", "-p", "-s", "NetSetupSvc"]
    assert fields["threat"] == {"framework": "MITRE ATT&CK", "tactic": {"id": ["TA0002"]}}
    assert fields["related"]["ip"] == ["10.10.10.10", "81.2.69.144"]
    amp = fields["cisco"]["amp"]
    assert amp["detection"] == "W32.E6FDBB79FC-90.SBX.TG" and amp["cloud_ioc"] == CLOUD_IOC["cloud_ioc"]
    assert "links" not in amp["computer"] and amp["computer"]["hostname"] == "SVRP-FIL01.example.com"
    assert not {"id", "event_type_id", "timestamp", "date", "severity", "tactics"} & set(amp)
    assert fields["message"] == json.dumps(CLOUD_IOC) and "original" not in fields["event"]


def test_threat_detected_with_user_parent_process_and_network():
    record = {"id": 1, "timestamp": 1600000000, "date": "2020-09-13T12:26:40+00:00", "event_type": "Threat Detected",
              "event_type_id": 1090519054, "severity": "Critical",
              "computer": {"hostname": "laptop", "user": "jdoe@CORP"},
              "file": {"disposition": "Malicious", "file_name": "x.exe", "identity": {"md5": "ab" * 16},
                       "parent": {"process_id": 4242, "file_name": "explorer.exe", "identity": {"sha1": "cd" * 20}}},
              "network_info": {"local_ip": "10.0.0.5", "local_port": 50000, "remote_ip": "203.0.113.9",
                               "remote_port": 443, "dirty_url": "http://bad.example/x",
                               "nfm": {"protocol": "TCP", "direction": "Outgoing connection from"}},
              "vulnerabilities": [{"cve": "CVE-2020-0001"}], "techniques": ["T1059"]}
    fields = mapped(record, preserve=True).fields
    assert fields["event"]["category"] == ["file", "malware"] and fields["event"]["severity"] == 4
    assert fields["host"] == {"name": "laptop", "hostname": "laptop"}
    assert fields["user"] == {"name": "jdoe", "domain": "CORP"}
    assert fields["process"] == {"pid": 4242, "name": "explorer.exe", "hash": {"sha1": "cd" * 20}}
    assert fields["source"] == {"ip": "10.0.0.5", "port": 50000}
    assert fields["destination"] == {"ip": "203.0.113.9", "port": 443}
    assert fields["network"] == {"transport": "tcp", "direction": "egress"}
    assert fields["url"] == {"full": "http://bad.example/x"}
    assert fields["related"]["cve"] == ["CVE-2020-0001"]
    assert fields["threat"]["technique"] == {"id": ["T1059"]}
    assert fields["event"]["original"] == fields["message"]


def test_module_fields_already_on_the_event_are_kept():
    event = Event({"message": "{}", "event": {"module": "cisco", "dataset": "cisco.amp"}}, 0.0, {},
                  record=CLOUD_IOC, record_kind="secure_endpoint")
    fields = cisco_secure_endpoint_processor(False)(event).fields
    assert fields["event"]["dataset"] == "cisco.amp" and fields["event"]["code"] == "1107296274"


@pytest.mark.parametrize("record, reason", [
    (["not", "an", "object"], "JSON object"),
    ({"id": 1, "date": "2022-04-04T19:35:00+00:00"}, "event_type_id"),
    ({"id": 1, "event_type_id": 1, "date": "yesterday"}, "neither timestamp"),
])
def test_what_it_cannot_map_raises(record, reason):
    with pytest.raises(UnmappableEvent, match=reason):
        mapped(record)
