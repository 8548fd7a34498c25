"""Defender XDR's Streaming API records through the real process, from the fake Event Hubs namespace.

Two hubs carry the same mix of `AdvancedHunting-*` and Entra ID sign-in records:
one read by the azure module (signinlogs), one by the microsoft module
(m365_defender_event). Every record lands in the fileset of its category with
its ECS fields, whichever module's consumer read it; nothing is dropped.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.fakes.eventhubs_amqp import FakeEventHubs
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d"
STAMP = "2024-05-14T09:02:17.1234567Z"


def hunting(table: str, row: dict) -> dict:
    return {"time": "2024-05-14T09:03:00.0000000Z", "tenantId": TENANT, "operationName": "Publish",
            "Tenant": "DefaultTenant", "category": f"AdvancedHunting-{table}",
            "properties": {"Timestamp": STAMP, "MachineGroup": "UnassignedGroup", **row}}


def records(tag: str) -> list[dict]:
    """One record of each table family, an unknown table and an Entra ID sign-in; ids carry `tag`."""
    return [
        hunting("DeviceProcessEvents", {
            "ReportId": f"{tag}-process", "DeviceId": "999b6fd7", "DeviceName": "testmachine6",
            "ActionType": "ProcessCreated", "FileName": "smartscreen.exe",
            "FolderPath": "C:\\Windows\\System32\\smartscreen.exe", "ProcessId": 4104,
            "ProcessCommandLine": "smartscreen.exe -Embedding", "SHA256": "a920",
            "InitiatingProcessFileName": "svchost.exe", "InitiatingProcessId": 996,
            "InitiatingProcessCommandLine": "svchost.exe -k DcomLaunch -p", "AccountName": "administrator1",
            "AccountDomain": "testmachine6", "AdditionalFields": '{"ProcessIntegrityLevel": "Medium"}'}),
        hunting("DeviceNetworkEvents", {
            "ReportId": f"{tag}-network", "DeviceId": "999b6fd7", "DeviceName": "testmachine6",
            "ActionType": "ConnectionSuccess", "LocalIP": "10.0.0.4", "LocalPort": 49700,
            "RemoteIP": "203.0.113.9", "RemotePort": 443, "Protocol": "Tcp",
            "InitiatingProcessFileName": "msedge.exe"}),
        hunting("DeviceRegistryEvents", {
            "ReportId": f"{tag}-registry", "DeviceId": "999b6fd7", "DeviceName": "testmachine6",
            "ActionType": "RegistryValueSet", "RegistryKey": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso",
            "RegistryValueName": "Run", "RegistryValueData": "evil.exe", "RegistryValueType": "String"}),
        hunting("EmailEvents", {
            "ReportId": f"{tag}-email", "NetworkMessageId": "nm-1", "InternetMessageId": "<m1@contoso.example>",
            "SenderFromAddress": "ceo@contoso.example", "RecipientEmailAddress": "bob@contoso.example",
            "Subject": "Invoice", "EmailDirection": "Inbound", "DeliveryAction": "Delivered",
            "SenderIPv4": "198.51.100.7"}),
        hunting("IdentityLogonEvents", {
            "ReportId": f"{tag}-identity", "ActionType": "LogonFailed", "AccountName": "bob",
            "AccountDomain": "contoso.example", "AccountUpn": "bob@contoso.example", "IPAddress": "192.0.2.44",
            "Protocol": "Kerberos", "AdditionalFields": {"Count": "3"}}),
        hunting("BrandNewTable", {"ReportId": f"{tag}-unknown", "Whatever": "kept"}),
        {"time": STAMP, "category": "SignInLogs", "operationName": "Sign-in activity", "tenantId": TENANT,
         "resultType": "0", "properties": {"id": f"{tag}-signin", "createdDateTime": "2024-05-14T09:02:17Z",
                                           "userPrincipalName": "bob@contoso.example", "ipAddress": "81.2.69.143",
                                           "status": {"errorCode": 0}}},
    ]


def record_id(event: dict) -> str:
    properties = orjson.loads(event["message"])["properties"]
    return properties.get("ReportId") or properties["id"]


def test_mixed_hubs_route_each_record_to_its_fileset_with_its_ecs_fields(tmp_path: Path) -> None:
    with FakeEventHubs(hub="insights-logs-signinlogs", partitions=2) as azure_hub, \
            FakeEventHubs(hub="defender-stream", partitions=2) as defender_hub:
        azure_hub.send("0", orjson.dumps({"records": records("a")}))
        defender_hub.send("1", orjson.dumps({"records": records("d")}))
        home = tmp_path / "home"
        (home / "modules.d").mkdir(parents=True)
        for name, text in {
            "azure": f"""
- module: azure
  signinlogs:
    enabled: true
    var.connection_string: "{azure_hub.connection_string}"
    input.partition_receive_timeout: 200ms
""",
            "microsoft": f"""
- module: microsoft
  m365_defender_event:
    var.eventhub: defender-stream
    var.connection_string: "{defender_hub.connection_string}"
    # a hub's first message, not the 5 s wait for a full batch (partition_receive_timeout)
    input.partition_receive_timeout: 200ms
""",
        }.items():
            path = home / "modules.d" / f"{name}.yml"
            path.write_text(text)
            path.chmod(0o600)
        forwarder = ForwarderProcess(home, """
            output.file:
              path: ${path.data}/events
            logging.metrics.enabled: false
            """)
        try:
            forwarder.start()
            wait_until(lambda: len(output_events(home)) >= 14, 90, "the fourteen records of both hubs")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    events = {record_id(event): event for event in output_events(home)}
    assert len(output_events(home)) == 14 and len(events) == 14
    for tag in ("a", "d"):
        assert events[f"{tag}-signin"]["event"]["dataset"] == "azure.signinlogs"
        assert events[f"{tag}-signin"]["source"]["ip"] == "81.2.69.143"
        for kind in ("process", "network", "registry", "email", "identity", "unknown"):
            event = events[f"{tag}-{kind}"]
            assert event["event"]["module"] == "microsoft", kind
            assert event["event"]["dataset"] == "m365_defender.event", kind
            assert event["fileset"]["name"] == "m365_defender_event", kind
            assert event["@timestamp"] == "2024-05-14T09:02:17.123Z", kind
            assert event["m365_defender"]["event"]["tenant"] == {"name": "DefaultTenant", "id": TENANT}
        process = events[f"{tag}-process"]
        assert process["host"] == {"id": "999b6fd7", "name": "testmachine6"}
        assert process["event"]["action"] == "processcreated" and process["event"]["category"] == ["process"]
        assert process["process"]["pid"] == 4104 and process["process"]["name"] == "smartscreen.exe"
        assert process["process"]["parent"] == {"name": "svchost.exe", "pid": 996,
                                                "command_line": "svchost.exe -k DcomLaunch -p"}
        assert process["m365_defender"]["event"]["additional_fields"] == {"ProcessIntegrityLevel": "Medium"}
        network = events[f"{tag}-network"]
        assert network["source"] == {"ip": "10.0.0.4", "port": 49700}
        assert network["destination"] == {"ip": "203.0.113.9", "port": 443}
        assert network["network"]["transport"] == "tcp"
        registry = events[f"{tag}-registry"]["registry"]
        assert registry["path"] == "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Run"
        assert registry["data"] == {"strings": ["evil.exe"], "type": "String"}
        email = events[f"{tag}-email"]["email"]
        assert email["from"]["address"] == ["ceo@contoso.example"] and email["subject"] == "Invoice"
        assert email["to"]["address"] == ["bob@contoso.example"] and email["direction"] == "Inbound"
        identity = events[f"{tag}-identity"]
        assert identity["user"]["name"] == "bob" and identity["source"]["ip"] == "192.0.2.44"
        assert identity["event"]["category"] == ["authentication"]
        unknown = events[f"{tag}-unknown"]["m365_defender"]["event"]
        assert unknown["whatever"] == "kept" and unknown["table"] == "BrandNewTable"
    assert events["d-process"]["tags"] == ["forwarded", "m365_defender-event"]
    log = forwarder.log_path.read_text()
    assert "carries AdvancedHunting-DeviceProcessEvents records (fileset m365_defender_event" in log
    assert "forwarding them as m365_defender.event" in log
    assert "carries SignInLogs records (fileset signinlogs" in log
    assert defender_hub.key not in log and azure_hub.key not in log
