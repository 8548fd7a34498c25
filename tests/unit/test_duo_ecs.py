"""The ECS mapping of each Duo log stream (`duo_ecs`), on records shaped as the Admin API returns them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from forwarder.modules.duo_ecs import RECORD_KINDS, UnmappableDuoRecord, normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Problem, Section

AUTH = {
    "access_device": {
        "browser": "Chrome", "browser_version": "124.0.6367.91", "epkey": "EP18JX1A10AB102M2T2X",
        "flash_version": "uninstalled", "hostname": None, "ip": "89.160.20.156", "is_encryption_enabled": True,
        "is_firewall_enabled": False, "is_password_set": True, "java_version": "uninstalled",
        "location": {"city": "Linköping", "country": "Sweden", "state": "Östergötland County"},
        "os": "Mac OS X", "os_version": "14.4.1", "security_agents": [],
    },
    "adaptive_trust_assessments": {
        "more_secure_auth": {"features_version": "3.0", "model_version": "2022.07.19.001", "policy_enabled": False,
                             "reason": "Normal level of trust; no detection of known attack pattern",
                             "trust_level": "NORMAL"},
    },
    "alias": "",
    "application": {"key": "DIY231J8BR23QK4UKBY8", "name": "Microsoft Azure Active Directory"},
    "auth_device": {"ip": "192.168.225.254:8443", "key": "DPFZRS9FB0D46QFTM891",
                    "location": {"city": "Ann Arbor", "country": "United States", "state": "Michigan"},
                    "name": "My iPhone X (734-555-2342)"},
    "email": "narroway@example.com",
    "event_type": "authentication",
    "factor": "duo_push",
    "isotimestamp": "2024-05-02T13:43:58.335969+00:00",
    "ood_software": None,
    "reason": "user_approved",
    "result": "success",
    "timestamp": 1714657438,
    "trusted_endpoint_status": "not trusted",
    "txid": "340a23e3-23f3-4d2a-a0f5-6e2f3b1e0c45",
    "user": {"groups": ["Duo Users", "CorpHQ Users"], "key": "DU3KC77WJ06Y5HIV7XKQ", "name": "narroway@example.com"},
}
ADMIN = {
    "action": "user_update",
    "description": '{"realname": "Jane Doe", "email": "jane.doe@example.com", "status": "Active"}',
    "isotimestamp": "2024-05-02T09:15:02.120000+00:00",
    "object": "jdoe",
    "timestamp": 1714641302,
    "username": "Ada Admin",
}
TELEPHONY = {
    "context": "authentication", "credits": 1, "phone": "+15555550123", "telephony_id": "220a3d06-3bf2-46b0-9c0c",
    "ts": "2024-05-02T16:07:45.304526+00:00", "txid": "2a1b7f3c-5d4e-4f6a-8b9c-0d1e2f3a4b5c", "type": "sms",
}
ACTIVITY = {
    "access_device": {"browser": "Firefox", "browser_version": "125.0", "ip": {"address": "81.2.69.142"},
                      "location": {"city": "London", "country": "United Kingdom", "state": "England"},
                      "os": "Windows", "os_version": "11"},
    "action": {"details": None, "name": "admin_login"},
    "activity_id": "a8a3c4f7-1cf0-4c5b-9e1a-2b4d6f8a0c1e",
    "actor": {"details": '{"created": "2023-01-10T10:00:00+00:00", "status": "active"}', "key": "DEAB12CD34EF56",
              "name": "alice@example.com", "type": "user"},
    "akey": "DAKEY4Q8PDLVJ3MX2R4T",
    "application": {"key": "DI2N7JDQF4SZ3EBLD6WS", "name": "Duo Admin Panel", "type": "admin_panel"},
    "outcome": {"result": "FAILURE"},
    "target": None,
    "ts": "2024-05-02T21:03:41.467255+00:00",
}
TRUST_MONITOR = {
    "bypass_status_enabled": 1604337058989,
    "enabled_by": {"key": "DEP1Z5NQ02Y0R8Q1V1WQ", "name": "Ada Admin"},
    "explanations": [{"summary": "amanda_tucker has not logged in from this location recently.",
                      "type": "NEW_COUNTRY_CODE"}],
    "from_common_netblock": True, "from_new_user": False, "low_risk_ip": False, "priority_event": True,
    "priority_reasons": [{"label": "CN", "type": "country"}],
    "sekey": "SEDOR9BP00L23C6YUH5", "state": "new", "state_updated_timestamp": None,
    "surfaced_auth": {"result": "success", "txid": "88d6a2f4", "user": {"name": "amanda_tucker"}},
    "surfaced_timestamp": 1714667605269,
    "triage_event_uri": "https://admin-e4d8f1a2.duosecurity.com:8443/trust-monitor?sekey=SEDOR9BP00L23C6YUH5",
    "triaged_as_interesting": False, "type": "auth",
}
OFFLINE_ENROLLMENT = {
    "action": "o2fa_user_provisioned",
    "description": '{"user_agent": "DuoCredProv/4.0.6.413 (Windows NT 6.3.9600; x64; Server)", '
                   '"hostname": "WKDEV3", "factor": "duo_otp"}',
    "isotimestamp": "2024-05-02T16:10:05+00:00",
    "object": "Acme-Laptop",
    "timestamp": 1714666205,
    "username": "narroway",
}
READ_AT = 1_714_700_000.5
RECORDS = {"auth": AUTH, "admin": ADMIN, "telephony": TELEPHONY, "activity": ACTIVITY,
           "trust_monitor": TRUST_MONITOR, "offline_enrollment": OFFLINE_ENROLLMENT}


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def nulls_or_empties(value: Any, path: str = "") -> list[str]:
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if type(value) is dict:
        return [found for key, item in value.items() for found in nulls_or_empties(item, f"{path}.{key}")]
    if type(value) is list:
        return [found for index, item in enumerate(value) for found in nulls_or_empties(item, f"{path}[{index}]")]
    return []


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_each_stream_maps_to_json_values_without_nulls_and_leaves_the_record_unchanged(kind: str) -> None:
    record = RECORDS[kind]
    before = copy.deepcopy(record)
    mapped = normalize(record, kind)
    assert kind in mapped.fields["cisco_duo"] and mapped.fields["event"]["kind"] == "event"
    assert nulls_or_empties(mapped.fields) == []
    assert orjson.loads(orjson.dumps(mapped.fields)) == mapped.fields
    assert record == before


@pytest.mark.parametrize(("kind", "expected"), [
    ("auth", "2024-05-02T13:43:58.335969+00:00"),
    ("admin", "2024-05-02T09:15:02.120000+00:00"),
    ("telephony", "2024-05-02T16:07:45.304526+00:00"),
    ("activity", "2024-05-02T21:03:41.467255+00:00"),
    ("trust_monitor", "2024-05-02T16:33:25.269000+00:00"),
    ("offline_enrollment", "2024-05-02T16:10:05+00:00"),
])
def test_timestamp_is_the_record_time_with_its_sub_second_precision(kind: str, expected: str) -> None:
    assert normalize(RECORDS[kind], kind).timestamp == pytest.approx(epoch(expected), abs=1e-6)


def test_timestamp_falls_back_to_epoch_seconds_and_reads_other_offsets_as_utc() -> None:
    without_iso = {key: value for key, value in AUTH.items() if key != "isotimestamp"}
    assert normalize(without_iso, "auth").timestamp == 1714657438.0
    shifted = {**ADMIN, "isotimestamp": "2024-05-02T11:15:02.125+02:00"}
    assert format_timestamp(normalize(shifted, "admin").timestamp) == "2024-05-02T09:15:02.125Z"
    assert normalize({"result": "success"}, "auth").timestamp is None


def test_auth_outcome_reason_user_source_and_user_agent() -> None:
    fields = normalize(AUTH, "auth").fields
    assert fields["event"] == {"kind": "event", "category": ["authentication"], "type": ["info"],
                               "outcome": "success", "reason": "user_approved"}
    assert fields["user"] == {"email": "narroway@example.com", "name": "narroway@example.com",
                              "id": "DU3KC77WJ06Y5HIV7XKQ"}
    assert fields["source"] == {
        "ip": "89.160.20.156", "address": "89.160.20.156",
        "geo": {"city_name": "Linköping", "region_name": "Östergötland County", "country_name": "Sweden"},
        "user": {**fields["user"], "group": {"name": ["Duo Users", "CorpHQ Users"]}},
    }
    assert fields["user_agent"] == {"name": "Chrome", "version": "124.0.6367.91",
                                    "os": {"name": "Mac OS X", "version": "14.4.1"}}
    assert fields["related"] == {"ip": ["89.160.20.156", "192.168.225.254"], "user": ["narroway@example.com"]}


def test_auth_keeps_the_rest_under_cisco_duo_auth() -> None:
    duo = normalize(AUTH, "auth").fields["cisco_duo"]["auth"]
    assert duo["access_device"] == {
        "epkey": "EP18JX1A10AB102M2T2X", "flash_version": "uninstalled", "java_version": "uninstalled",
        "location": {"city": "Linköping", "country": "Sweden", "state": "Östergötland County"},
        "ip": "89.160.20.156", "is_encryption_enabled": "true", "is_firewall_enabled": "false",
        "is_password_set": "true"}
    assert duo["auth_device"] == {"key": "DPFZRS9FB0D46QFTM891", "name": "My iPhone X (734-555-2342)",
                                  "location": AUTH["auth_device"]["location"], "ip": "192.168.225.254", "port": 8443}
    assert duo["application"] == AUTH["application"]
    assert duo["adaptive_trust_assessments"]["more_secure_auth"]["trust_level"] == "NORMAL"
    assert {key: duo[key] for key in ("email", "event_type", "factor", "reason", "result", "txid",
                                      "trusted_endpoint_status")} == {
        "email": "narroway@example.com", "event_type": "authentication", "factor": "duo_push",
        "reason": "user_approved", "result": "success", "txid": AUTH["txid"],
        "trusted_endpoint_status": "not trusted"}
    assert not {"alias", "ood_software", "user", "timestamp", "isotimestamp"} & set(duo)


def test_auth_denied_with_hostname_port_and_ipv6() -> None:
    record = {**AUTH, "result": "denied", "reason": "user_marked_fraud",
              "access_device": {"hostname": "WKS-0042", "ip": "[2001:db8::8a2e:370:7334]:51000",
                                "security_agents": [{"security_agent": "CrowdStrike", "version": "7.10"}]}}
    fields = normalize(record, "auth").fields
    assert fields["event"]["outcome"] == "failure" and fields["event"]["reason"] == "user_marked_fraud"
    assert fields["source"]["address"] == "WKS-0042"
    assert (fields["source"]["ip"], fields["source"]["port"]) == ("2001:db8::8a2e:370:7334", 51000)
    assert fields["related"]["hosts"] == ["WKS-0042"]
    assert fields["cisco_duo"]["auth"]["access_device"]["security_agents"] == [
        {"security_agent": "CrowdStrike", "version": "7.10"}]
    assert "user_agent" not in fields


def test_auth_without_devices_or_user_is_still_an_authentication_event() -> None:
    fields = normalize({"txid": "t-1", "result": "error", "eventtype": "authentication",
                        "host": "api-x.duosecurity.com"}, "auth").fields
    assert fields == {"event": {"kind": "event", "category": ["authentication"], "type": ["info"],
                                "outcome": "failure"},
                      "cisco_duo": {"auth": {"txid": "t-1", "result": "error"}}}


def test_admin_description_is_decoded_and_classifies_the_change() -> None:
    fields = normalize(ADMIN, "admin").fields
    assert fields["event"] == {"kind": "event", "outcome": "success", "action": "user_update",
                               "category": ["iam"], "type": ["user", "change"]}
    assert fields["user"] == {"name": "Ada Admin", "target": {"name": "jdoe"},
                              "changes": {"name": "Jane Doe", "email": "jane.doe@example.com"}}
    assert fields["cisco_duo"]["admin"] == {
        "action": "user_update", "user": {"name": "Ada Admin"}, "action_performed_on": "jdoe",
        "flattened": {"realname": "Jane Doe", "email": "jane.doe@example.com", "status": "Active"},
        "status": "Active"}
    assert fields["related"] == {"user": ["Ada Admin"]}


def test_admin_description_that_is_not_json_is_kept_raw_as_the_reason() -> None:
    record = {**ADMIN, "action": "admin_login_error", "description": "Invalid password for admin",
              "object": None}
    fields = normalize(record, "admin").fields
    assert fields["event"] == {"kind": "event", "outcome": "failure", "action": "admin_login_error",
                               "category": ["iam"], "type": ["admin"], "reason": "Invalid password for admin"}
    assert fields["cisco_duo"]["admin"]["description"] == "Invalid password for admin"
    assert "flattened" not in fields["cisco_duo"]["admin"]
    broken = normalize({**ADMIN, "description": '{"realname": '}, "admin").fields
    assert broken["cisco_duo"]["admin"]["description"] == '{"realname": '


def test_admin_errors_of_a_failed_sync_and_creation_deletion_types() -> None:
    record = {**ADMIN, "action": "ad_sync_failed", "object": None,
              "description": '{"Errors": ["Bind failed"], "status": "failed"}'}
    fields = normalize(record, "admin").fields
    assert fields["event"]["outcome"] == "failure" and fields["event"]["type"] == ["info"]
    assert "category" not in fields["event"]
    assert fields["cisco_duo"]["admin"]["errors"] == ["Bind failed"]
    assert normalize({**ADMIN, "action": "group_delete"}, "admin").fields["event"]["type"] == ["group", "deletion"]
    assert normalize({**ADMIN, "action": "integration_create"}, "admin").fields["event"]["type"] == [
        "info", "creation"]


def test_telephony_v2_fields() -> None:
    fields = normalize(TELEPHONY, "telephony").fields
    assert fields == {"event": {"kind": "event", "id": "220a3d06-3bf2-46b0-9c0c"},
                      "cisco_duo": {"telephony": {"event_type": "authentication", "credits": 1,
                                                  "phone_number": "+15555550123", "id": "220a3d06-3bf2-46b0-9c0c",
                                                  "txid": TELEPHONY["txid"], "type": "sms"}}}


def test_activity_source_user_action_and_outcome() -> None:
    fields = normalize(ACTIVITY, "activity").fields
    assert fields["event"] == {"kind": "event", "id": ACTIVITY["activity_id"], "action": "admin_login",
                               "outcome": "failure"}
    assert fields["source"] == {"ip": "81.2.69.142", "geo": {"city_name": "London", "region_name": "England",
                                                            "country_name": "United Kingdom"}}
    assert fields["user"] == {"name": "alice@example.com"}
    assert fields["user_agent"] == {"name": "Firefox", "version": "125.0", "os": {"name": "Windows", "version": "11"}}
    assert fields["related"] == {"ip": ["81.2.69.142"], "user": ["alice@example.com"]}
    duo = fields["cisco_duo"]["activity"]
    assert duo["actor"]["details"] == {"created": "2023-01-10T10:00:00+00:00", "status": "active"}
    assert duo["outcome"] == "FAILURE" and duo["id"] == ACTIVITY["activity_id"] and duo["akey"] == ACTIVITY["akey"]
    assert duo["action"] == {"name": "admin_login"} and "target" not in duo
    assert duo["access_device"]["ip"] == {"address": "81.2.69.142"}


def test_activity_by_an_admin_has_no_user_name() -> None:
    record = {**ACTIVITY, "actor": {"name": "Ada Admin", "type": "admin", "details": "not json"}}
    fields = normalize(record, "activity").fields
    assert "user" not in fields and fields["cisco_duo"]["activity"]["actor"]["details"] == "not json"


def test_trust_monitor_record_event_id_and_triage_link() -> None:
    fields = normalize(TRUST_MONITOR, "trust_monitor").fields
    assert fields["event"] == {"kind": "event", "id": "SEDOR9BP00L23C6YUH5"}
    assert fields["url"] == {"original": TRUST_MONITOR["triage_event_uri"], "scheme": "https",
                             "domain": "admin-e4d8f1a2.duosecurity.com", "port": 8443, "path": "/trust-monitor",
                             "query": "sekey=SEDOR9BP00L23C6YUH5"}
    duo = fields["cisco_duo"]["trust_monitor"]
    assert duo["explanations"][0]["type"] == "NEW_COUNTRY_CODE" and duo["from_new_user"] is False
    assert duo["surfaced_auth"]["user"] == {"name": "amanda_tucker"}
    assert "state_updated_timestamp" not in duo and "surfaced_timestamp" not in duo


def test_offline_enrollment_description_and_user() -> None:
    fields = normalize(OFFLINE_ENROLLMENT, "offline_enrollment").fields
    assert fields == {
        "event": {"kind": "event", "action": "o2fa_user_provisioned"},
        "user": {"name": "narroway"},
        "cisco_duo": {"offline_enrollment": {
            "action": "o2fa_user_provisioned", "object": "Acme-Laptop", "user": {"name": "narroway"},
            "description": {"hostname": "WKDEV3", "user_agent": "DuoCredProv/4.0.6.413 (Windows NT 6.3.9600; x64; "
                            "Server)", "factor": "duo_otp"}}},
        "related": {"user": ["narroway"]},
    }


@pytest.mark.parametrize(("record", "kind", "message"), [
    (["not", "an", "object"], "auth", "the auth record is a list, not a JSON object"),
    ("text", "admin", "the admin record is a str, not a JSON object"),
    (AUTH, "authentication", "unknown Duo log stream 'authentication'"),
    (AUTH, "", "unknown Duo log stream ''"),
])
def test_a_record_it_cannot_map_raises(record: Any, kind: str, message: str) -> None:
    with pytest.raises(UnmappableDuoRecord, match=message):
        normalize(record, kind)


def processor(**options: Any) -> Processor:
    """Built the way a `processors:` item naming it is built, through the registered `duo_ecs` entry point."""
    problems: list = []
    [built] = build_processors([Section({"duo_ecs": options}, "processors.0", "inputs.d/duo.yml", problems)])
    assert problems == []
    return built


def emitted(record: Any, kind: str) -> Event:
    """An event as the `duo` input publishes it: the record's JSON in `message`, the record beside it."""
    return Event(fields={"message": json_text(record)}, timestamp=READ_AT, meta={"_id": "id-1"}, record=record,
                 record_kind=kind)


def test_the_processor_keeps_the_message_first_and_adds_the_mapping_and_time() -> None:
    event = processor()(emitted(AUTH, "auth"))
    mapped = normalize(AUTH, "auth")
    assert event.fields == {"message": json_text(AUTH), **mapped.fields}
    assert list(event.fields) == ["message", *mapped.fields]
    assert format_timestamp(event.timestamp) == "2024-05-02T13:43:58.335Z"
    assert event.meta == {"_id": "id-1"}


def test_preserve_original_event_copies_the_message() -> None:
    event = processor(preserve_original_event=True)(emitted(TELEPHONY, "telephony"))
    assert event.fields["event"]["original"] == event.fields["message"] == json_text(TELEPHONY)
    assert "original" not in processor()(emitted(TELEPHONY, "telephony")).fields["event"]


def test_processor_options_are_checked_against_the_declared_ones() -> None:
    problems: list[Problem] = []
    build_processors([Section({"duo_ecs": {"preserve_original": True}}, "processors.0", "forwarder.yml", problems)])
    assert [str(problem) for problem in problems] == [
        "forwarder.yml: processors.0.duo_ecs.preserve_original: unknown setting (did you mean "
        "'processors.0.duo_ecs.preserve_original_event'?)"]


def test_a_record_it_cannot_map_is_forwarded_raw_tagged_and_counted(harness: Any) -> None:
    client = harness.connect("duo", input_id="duo-auth", module_processors=[processor()],
                             module_fields={"event": {"module": "cisco_duo", "dataset": "cisco_duo.auth"}})
    event = client.prepare(emitted(["a", "list"], "auth"))
    assert event is not None, "never dropped"
    assert event.fields["message"] == '["a","list"]'
    assert event.fields["tags"] == ["_parse_failure"]
    assert "the auth record is a list, not a JSON object" in event.fields["error"]["message"]
    assert event.fields["event"] == {"module": "cisco_duo", "dataset": "cisco_duo.auth"}
    assert event.timestamp == READ_AT
    assert client.stats.extra["mapping_failures"] == 1
    mapped = client.prepare(emitted(AUTH, "auth"))
    assert mapped.fields["event"]["dataset"] == "cisco_duo.auth" and mapped.fields["event"]["outcome"] == "success"
    assert client.stats.extra["mapping_failures"] == 1
