"""The Entra ID → ECS mapping (reference/entraid-ecs.md), row by row, on records shaped like Microsoft's."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.modules.entraid_ecs import RECORD_TYPES, normalize, record_time, record_type_for_category
from forwarder.pipeline.event import format_timestamp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "entraid"

SIGNIN_FIXTURES = [
    "signin_interactive_success",
    "signin_failed_password",
    "signin_noninteractive",
    "signin_service_principal",
    "signin_managed_identity",
    "signin_no_location_device",
]


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fields_of(name: str, record_type: str) -> dict[str, Any]:
    return normalize(load(name), record_type).fields


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def assert_no_nulls_and_plain_json(value: Any, path: str = "") -> None:
    assert value is not None, f"null at {path}"
    assert type(value) in (dict, list, str, int, float, bool), f"{type(value)} at {path}"
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str
            assert_no_nulls_and_plain_json(item, f"{path}.{key}")
    elif type(value) is list:
        for index, item in enumerate(value):
            assert_no_nulls_and_plain_json(item, f"{path}[{index}]")


# --- common rows ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SIGNIN_FIXTURES)
def test_every_signin_gets_cloud_trace_and_only_json_values(name: str) -> None:
    record = load(name)
    fields = normalize(record, "signinlogs").fields
    assert fields["cloud"] == {"provider": "Azure", "service": {"name": "Azure EntraId"}}
    assert fields["trace"] == {"id": record["correlationId"]}
    assert_no_nulls_and_plain_json(fields)
    assert orjson.loads(orjson.dumps(fields)) == fields


def test_timestamp_is_the_record_time_truncated_to_milliseconds_on_the_wire() -> None:
    result = normalize(load("signin_interactive_success"), "signinlogs")
    assert format_timestamp(result.timestamp) == "2024-05-14T08:21:43.127Z"
    audit = {"activityDateTime": "2018-01-09T21:20:02.7215374Z"}
    assert format_timestamp(normalize(audit, "auditlogs").timestamp) == "2018-01-09T21:20:02.721Z"


def test_related_lists_hold_the_mapped_ip_and_user_name() -> None:
    fields = fields_of("signin_interactive_success", "signinlogs")
    assert fields["related"] == {"ip": ["131.107.159.37"], "user": ["Adele Vance"]}


def test_related_is_left_out_when_there_is_no_ip_or_user_name() -> None:
    assert "related" not in fields_of("signin_managed_identity", "signinlogs")
    fields = fields_of("signin_service_principal", "signinlogs")
    assert fields["related"] == {"ip": ["20.190.151.7"]}


# --- sign-ins ------------------------------------------------------------------------------------------------------


def test_signin_success_code_outcome_category_and_type() -> None:
    fields = fields_of("signin_interactive_success", "signinlogs")
    assert fields["event"]["code"] == "0"
    assert fields["event"]["outcome"] == "success"
    assert fields["event"]["category"] == ["authentication"]
    assert fields["event"]["type"] == ["start"]
    # Graph writes a failureReason ("Other.") on successes too; it is not an error.
    assert "error" not in fields


def test_signin_failure_keeps_the_code_as_text_and_the_reason_as_error_message() -> None:
    fields = fields_of("signin_failed_password", "signinlogs")
    assert fields["event"]["code"] == "50126"
    assert fields["event"]["outcome"] == "failure"
    assert fields["error"] == {"message": "Error validating credentials due to invalid username or password."}


def test_signin_provider_and_service_are_the_resource_and_the_app() -> None:
    fields = fields_of("signin_interactive_success", "signinlogs")
    assert fields["event"]["provider"] == "Windows Azure Service Management API"
    assert fields["service"] == {"id": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "name": "Azure Portal"}


def test_signin_source_address_and_geo() -> None:
    fields = fields_of("signin_interactive_success", "signinlogs")
    assert fields["source"] == {
        "address": "131.107.159.37",
        "ip": "131.107.159.37",
        "geo": {
            "city_name": "Redmond",
            "region_name": "Washington",
            "country_iso_code": "US",
            "location": {"lat": 47.68050003051758, "lon": -122.12094116210938},
        },
    }


def test_signin_from_ipv6_address() -> None:
    fields = fields_of("signin_failed_password", "signinlogs")
    assert fields["source"]["ip"] == "2001:db8:85a3::8a2e:370:7334"
    assert fields["related"]["ip"] == ["2001:db8:85a3::8a2e:370:7334"]


def test_signin_user() -> None:
    fields = fields_of("signin_interactive_success", "signinlogs")
    assert fields["user"] == {
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "name": "Adele Vance",
        "email": "AdeleV@contoso.onmicrosoft.com",
    }


def test_signin_host_os_and_user_agent_prefers_the_user_agent_string() -> None:
    record = load("signin_interactive_success")
    fields = normalize(record, "signinlogs").fields
    assert fields["host"] == {"os": {"name": "Windows10"}}
    assert fields["user_agent"] == {"original": record["userAgent"]}


def test_signin_user_agent_falls_back_to_the_browser_when_the_user_agent_is_empty() -> None:
    assert fields_of("signin_failed_password", "signinlogs")["user_agent"] == {"original": "Mobile Safari"}


def test_signin_properties_kept_under_azure_entraid_properties() -> None:
    record = load("signin_interactive_success")
    properties = normalize(record, "signinlogs").fields["azure"]["entraid"]["properties"]
    assert properties["appliedConditionalAccessPolicies"] == record["appliedConditionalAccessPolicies"]
    assert properties["clientAppUsed"] == "Browser"
    assert properties["conditionalAccessStatus"] == "success"
    assert properties["isInteractive"] == "true"
    assert properties["resourceId"] == "797f4846-ba00-4fd7-ba43-dac1f8f63013"
    assert properties["riskDetail"] == "none"
    assert properties["riskLevelAggregated"] == "none"
    assert properties["riskLevelDuringSignIn"] == "none"
    assert properties["riskState"] == "none"
    assert properties["riskEventTypes"] == []


def test_signin_risk_fields_of_a_risky_failed_signin() -> None:
    properties = fields_of("signin_failed_password", "signinlogs")["azure"]["entraid"]["properties"]
    assert properties["riskLevelDuringSignIn"] == "medium"
    assert properties["riskState"] == "atRisk"
    assert properties["riskEventTypes"] == ["unfamiliarFeatures"]
    assert properties["appliedConditionalAccessPolicies"] == []


def test_noninteractive_signin_reads_is_interactive_false() -> None:
    fields = fields_of("signin_noninteractive", "signinlogs")
    assert fields["azure"]["entraid"]["properties"]["isInteractive"] == "false"
    assert fields["azure"]["entraid"]["properties"]["signInEventTypes"] == ["nonInteractiveUser"]
    assert fields["event"]["outcome"] == "success"


def test_service_principal_signin_has_a_service_and_no_user_and_no_nulls() -> None:
    fields = fields_of("signin_service_principal", "signinlogs")
    assert "user" not in fields
    assert fields["service"] == {"id": "3f0e2c5a-6b7d-4c8e-9f1a-2b3c4d5e6f7a", "name": "Contoso HR Sync"}
    assert fields["event"]["code"] == "7000215"
    assert fields["event"]["outcome"] == "failure"
    assert fields["error"]["message"] == "Invalid client secret is provided."
    properties = fields["azure"]["entraid"]["properties"]
    assert properties["servicePrincipalId"] == "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    for absent in ("riskDetail", "riskLevelAggregated", "riskEventTypes", "clientAppUsed"):
        assert absent not in properties
    assert "host" not in fields
    assert "user_agent" not in fields


def test_managed_identity_signin_skips_empty_strings_and_null_location() -> None:
    fields = fields_of("signin_managed_identity", "signinlogs")
    assert "source" not in fields
    assert "user" not in fields
    assert fields["service"]["name"] == "func-contoso-ingest"
    assert fields["azure"]["entraid"]["properties"]["signInEventTypes"] == ["managedIdentity"]


def test_signin_without_location_or_device_detail() -> None:
    fields = fields_of("signin_no_location_device", "signinlogs")
    assert fields["source"] == {"address": "198.51.100.23", "ip": "198.51.100.23"}
    assert "host" not in fields
    assert "user_agent" not in fields
    assert fields["event"]["code"] == "53000"
    assert fields["error"]["message"].startswith("Device is not in required device state")
    assert fields["azure"]["entraid"]["properties"]["riskLevelAggregated"] == "hidden"


def test_event_hub_signin_gives_the_same_fields_as_the_graph_record() -> None:
    envelope = load("eventhub_signin")["records"][0]
    through_hub = normalize(envelope["properties"], "signinlogs", envelope)
    through_graph = normalize(load("signin_noninteractive"), "signinlogs")
    assert through_hub.fields == through_graph.fields
    assert through_hub.timestamp == through_graph.timestamp
    assert record_type_for_category(envelope["category"]) == "signinlogs"


def test_event_hub_envelope_fills_in_what_the_properties_lack() -> None:
    envelope = load("eventhub_signin")["records"][0]
    properties = {"userId": "d10e2b6c-9a3f-4d55-8b77-1e2f3a4b5c6d"}
    result = normalize(properties, "signinlogs", envelope)
    assert result.fields["event"]["code"] == "0"
    assert result.fields["event"]["outcome"] == "success"
    assert result.fields["trace"] == {"id": "8b79f1be-2c3d-4e5f-a6b7-c8d9e0f1a2b3"}
    assert result.fields["source"]["ip"] == "81.2.69.143"
    assert result.fields["user"]["name"] == "Nikhita Sethi"
    assert format_timestamp(result.timestamp) == "2024-05-14T09:02:17.309Z"


def test_normalizing_does_not_change_the_record() -> None:
    record = load("signin_interactive_success")
    before = copy.deepcopy(record)
    normalize(record, "signinlogs")
    assert record == before


# --- times and cursors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-14T08:21:43Z", "2024-05-14T08:21:43.000000"),
        ("2024-05-14T08:21:43.127Z", "2024-05-14T08:21:43.127000"),
        ("2024-05-14T08:21:43.127654Z", "2024-05-14T08:21:43.127654"),
        ("2024-05-14T08:21:43.1276543Z", "2024-05-14T08:21:43.127654"),
        ("2024-05-14T08:21:43.1276543z", "2024-05-14T08:21:43.127654"),
        ("2024-05-14T08:21:43.1276543+00:00", "2024-05-14T08:21:43.127654"),
        ("2024-05-14T10:21:43.1276543+02:00", "2024-05-14T08:21:43.127654"),
        ("2024-05-14T03:21:43-05:00", "2024-05-14T08:21:43.000000"),
        ("2024-05-14T08:21:43.5", "2024-05-14T08:21:43.500000"),
        ("2024-05-14 08:21:43", "2024-05-14T08:21:43.000000"),
        ("5/14/2024 8:21:43 AM", "2024-05-14T08:21:43.000000"),
    ],
)
def test_record_time_reads_graph_and_azure_monitor_time_forms(text: str, expected: str) -> None:
    assert record_time({"createdDateTime": text}, "signinlogs") == pytest.approx(epoch(expected), abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2024-13-45T00:00:00Z", 1715674903, {"a": 1}, []])
def test_unreadable_times_give_none(value: Any) -> None:
    assert record_time({"createdDateTime": value}, "signinlogs") is None
    assert normalize({"createdDateTime": value}, "signinlogs").timestamp is None


@pytest.mark.parametrize(
    ("record_type", "cursor_key", "event_key"),
    [
        ("signinlogs", "createdDateTime", "createdDateTime"),
        ("auditlogs", "activityDateTime", "activityDateTime"),
        ("provisioning", "activityDateTime", "activityDateTime"),
        ("risk_detection", "lastUpdatedDateTime", "detectedDateTime"),
        ("risky_user", "riskLastUpdatedDateTime", "riskLastUpdatedDateTime"),
        ("alert", "lastUpdateDateTime", "createdDateTime"),
        ("incident", "lastUpdateDateTime", "createdDateTime"),
    ],
)
def test_cursor_time_and_event_time_per_record_type(record_type: str, cursor_key: str, event_key: str) -> None:
    assert record_type in RECORD_TYPES
    record = {event_key: "2024-05-01T00:00:00Z"}
    record.setdefault(cursor_key, "2024-05-02T00:00:00.25Z")
    assert record_time(record, record_type) == epoch(record[cursor_key].rstrip("Z"))
    assert normalize(record, record_type).timestamp == epoch(record[event_key].rstrip("Z"))


def test_event_time_falls_back_to_the_envelope_time() -> None:
    result = normalize({}, "auditlogs", {"time": "2024-05-14T09:02:17.3097429Z"})
    assert format_timestamp(result.timestamp) == "2024-05-14T09:02:17.309Z"


def test_record_time_of_unknown_type_or_non_object_is_none() -> None:
    assert record_time({"createdDateTime": "2024-05-01T00:00:00Z"}, "nonsense") is None
    assert record_time(None, "signinlogs") is None


# --- directory audits ----------------------------------------------------------------------------------------------

AUDIT_FIXTURES = ["audit_user_add_member", "audit_app_update_user", "audit_policy_failure"]


@pytest.mark.parametrize("name", AUDIT_FIXTURES)
def test_every_audit_gets_cloud_trace_and_only_json_values(name: str) -> None:
    record = load(name)
    fields = normalize(record, "auditlogs").fields
    assert fields["cloud"] == {"provider": "Azure", "service": {"name": "Azure EntraId"}}
    assert fields["trace"] == {"id": record["correlationId"]}
    assert_no_nulls_and_plain_json(fields)


def test_audit_provider_service_action_and_category() -> None:
    fields = fields_of("audit_user_add_member", "auditlogs")
    assert fields["event"]["provider"] == "Core Directory"
    assert fields["service"] == {"name": "Core Directory"}
    assert fields["event"]["action"] == "Add member to group"
    assert fields["event"]["category"] == ["iam"]
    assert fields["azure"]["entraid"]["audit"]["category"] == "GroupManagement"


def test_audit_policy_category_is_configuration() -> None:
    fields = fields_of("audit_policy_failure", "auditlogs")
    assert fields["event"]["category"] == ["configuration"]
    assert fields["azure"]["entraid"]["audit"]["category"] == "Policy"


@pytest.mark.parametrize(
    ("result", "outcome"),
    [("success", "success"), ("failure", "failure"), ("timeout", "failure"), ("unknownFutureValue", "unknown"),
     ("Success", "success"), (None, "unknown")],
)
def test_audit_outcome_from_result(result: str | None, outcome: str) -> None:
    record = {**load("audit_user_add_member"), "result": result}
    fields = normalize(record, "auditlogs").fields
    assert fields["event"]["outcome"] == outcome
    if result is None:
        assert "result" not in fields["azure"]["entraid"]["audit"]
    else:
        assert fields["azure"]["entraid"]["audit"]["result"] == result


def test_audit_reason_only_when_not_empty() -> None:
    assert "reason" not in fields_of("audit_user_add_member", "auditlogs")["event"]
    assert "reason" not in fields_of("audit_app_update_user", "auditlogs")["event"]
    reason = fields_of("audit_policy_failure", "auditlogs")["event"]["reason"]
    assert reason == "The policy contains an invalid condition."


def test_audit_initiated_by_a_user() -> None:
    fields = fields_of("audit_user_add_member", "auditlogs")
    assert fields["source"] == {"address": "131.107.159.37", "ip": "131.107.159.37"}
    assert fields["user"] == {
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "name": "Adele Vance",
        "email": "AdeleV@contoso.onmicrosoft.com",
    }
    assert fields["related"] == {"ip": ["131.107.159.37"], "user": ["Adele Vance"]}


def test_audit_initiated_by_a_user_from_a_bracketed_ipv6_address_with_port() -> None:
    fields = fields_of("audit_policy_failure", "auditlogs")
    assert fields["source"] == {"address": "[2001:db8::17]:50432", "ip": "2001:db8::17", "port": 50432}
    assert fields["user"] == {"id": "d10e2b6c-9a3f-4d55-8b77-1e2f3a4b5c6d", "email": "nikhita@contoso.onmicrosoft.com"}
    assert fields["related"] == {"ip": ["2001:db8::17"]}


def test_audit_initiated_by_an_app_names_the_service_and_no_user() -> None:
    fields = fields_of("audit_app_update_user", "auditlogs")
    assert fields["service"] == {"id": "3f0e2c5a-6b7d-4c8e-9f1a-2b3c4d5e6f7a", "name": "Contoso HR Sync"}
    assert fields["event"]["provider"] == "Core Directory"
    assert "user" not in fields
    assert "source" not in fields
    assert "related" not in fields


def test_audit_kept_fields_and_modified_properties_stay_json_text() -> None:
    record = load("audit_user_add_member")
    audit = normalize(record, "auditlogs").fields["azure"]["entraid"]["audit"]
    assert audit["operation_type"] == "Assign"
    assert audit["additional_details"] == record["additionalDetails"]
    member, group = audit["target_resources"]
    assert member == {
        "id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
        "type": "User",
        "userPrincipalName": "MeganB@contoso.onmicrosoft.com",
        "modifiedProperties": [
            {"displayName": "Group.ObjectID", "newValue": "\"02bd9fd6-8f93-4758-87c3-1fb73740a315\""},
            {"displayName": "Group.DisplayName", "newValue": "\"Sales and Marketing\""},
            {"displayName": "Group.WellKnownObjectName"},
        ],
    }
    assert group["groupType"] == "unifiedGroups"
    assert group["modifiedProperties"] == []


def test_audit_target_type_spelt_type_or_Type_reads_type() -> None:
    target = fields_of("audit_app_update_user", "auditlogs")["azure"]["entraid"]["audit"]["target_resources"][0]
    assert target["type"] == "User"
    assert "Type" not in target


def test_audit_values_sent_decoded_become_json_text_so_no_field_changes_type() -> None:
    audit = fields_of("audit_app_update_user", "auditlogs")["azure"]["entraid"]["audit"]
    assert audit["additional_details"] == [{"key": "UserType", "value": "Member"}, {"key": "RetryCount", "value": "0"}]
    record = load("audit_app_update_user")
    record["targetResources"][0]["modifiedProperties"][0]["newValue"] = ["Senior Engineer"]
    target = normalize(record, "auditlogs").fields["azure"]["entraid"]["audit"]["target_resources"][0]
    assert target["modifiedProperties"][0]["newValue"] == '["Senior Engineer"]'


@pytest.mark.parametrize("initiated_by", [None, {}, {"user": None, "app": None}, {"user": {}, "app": {}}, "x", []])
def test_audit_without_an_initiator(initiated_by: Any) -> None:
    record = {**load("audit_user_add_member"), "initiatedBy": initiated_by}
    fields = normalize(record, "auditlogs").fields
    assert "user" not in fields
    assert "source" not in fields
    assert fields["service"] == {"name": "Core Directory"}


def test_event_hub_audit_gives_the_same_fields_as_the_graph_record() -> None:
    envelope = load("eventhub_audit")["records"][0]
    through_hub = normalize(envelope["properties"], "auditlogs", envelope)
    through_graph = normalize(load("audit_user_add_member"), "auditlogs")
    assert through_hub.fields == through_graph.fields
    assert through_hub.timestamp == through_graph.timestamp
    assert record_type_for_category(envelope["category"]) == "auditlogs"


# --- provisioning, identity protection, alerts, incidents ----------------------------------------------------------

OTHER_FIXTURES = [
    ("provisioning_create_failure", "provisioning"),
    ("risk_detection_unfamiliar", "risk_detection"),
    ("risky_user", "risky_user"),
    ("alert_with_evidence", "alert"),
    ("incident", "incident"),
]


@pytest.mark.parametrize(("name", "record_type"), OTHER_FIXTURES)
def test_other_records_get_cloud_time_and_only_json_values(name: str, record_type: str) -> None:
    result = normalize(load(name), record_type)
    assert result.fields["cloud"] == {"provider": "Azure", "service": {"name": "Azure EntraId"}}
    assert result.timestamp is not None
    assert_no_nulls_and_plain_json(result.fields)


def test_provisioning_action_outcome_error_and_identities() -> None:
    result = normalize(load("provisioning_create_failure"), "provisioning")
    fields = result.fields
    assert format_timestamp(result.timestamp) == "2024-05-14T13:10:27.091Z"
    assert fields["event"] == {
        "action": "create",
        "outcome": "failure",
        "code": "AzureActiveDirectoryCannotUpdateObjectsOriginatedInExternalService",
    }
    assert fields["error"] == {"message": "The user cannot be created in AWS because the role mapping is missing."}
    assert fields["service"] == {"name": "AWS Single-Account Access"}
    # The provisioning service acted, not a user; the provisioned account is the target.
    assert fields["user"] == {"target": {"name": "MeganB@contoso.onmicrosoft.com"}}
    assert "related" not in fields
    assert "trace" not in fields


def test_provisioning_own_fields() -> None:
    own = fields_of("provisioning_create_failure", "provisioning")["azure"]["entraid"]["provisioning"]
    assert own["job_id"].startswith("aws.")
    assert own["cycle_id"] == "44576a58-3a30-4cba-b8e3-a3a2bd6a8a1f"
    assert own["change_id"] == "eaad2f8b-e6e3-409b-83bd-e4e2c57177d5"
    assert own["status"] == "failure"
    assert own["duration_ms"] == 2104
    assert own["source_identity"]["displayName"] == "Megan Bowen"
    assert own["target_system"]["displayName"] == "AWS Single-Account Access"
    assert [step["status"] for step in own["provisioning_steps"]] == ["success", "failure"]
    assert own["modified_properties"][0] == {"displayName": "accountEnabled", "newValue": "True"}


def test_provisioning_on_demand_by_a_user_maps_the_user() -> None:
    record = load("provisioning_create_failure")
    record["initiatedBy"] = {"id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "displayName": "Adele Vance",
                             "initiatorType": "user"}
    record["provisioningStatusInfo"] = {"status": "success", "errorInformation": None}
    fields = normalize(record, "provisioning").fields
    assert fields["user"]["id"] == "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
    assert fields["related"] == {"user": ["Adele Vance"]}
    assert fields["event"]["outcome"] == "success"
    assert "error" not in fields


def test_risk_detection_maps_user_source_and_risk() -> None:
    result = normalize(load("risk_detection_unfamiliar"), "risk_detection")
    fields = result.fields
    assert format_timestamp(result.timestamp) == "2024-05-14T08:25:10.500Z"
    assert fields["event"] == {"action": "unfamiliarFeatures"}
    assert fields["source"]["ip"] == "2001:db8:85a3::8a2e:370:7334"
    assert fields["source"]["geo"]["country_iso_code"] == "NL"
    assert fields["user"]["email"] == "MeganB@contoso.onmicrosoft.com"
    assert fields["related"] == {"ip": ["2001:db8:85a3::8a2e:370:7334"], "user": ["Megan Bowen"]}
    assert fields["trace"] == {"id": "0b2f4e3c-8d5a-4e1f-9a6b-7c8d9e0f1a2b"}
    own = fields["azure"]["entraid"]["risk_detection"]
    assert own["risk_level"] == "medium"
    assert own["detection_timing_type"] == "realtime"
    assert own["last_updated_date_time"] == "2024-05-14T08:31:52.8145163Z"
    assert json.loads(own["additional_info"])[0] == {"Key": "userAgent", "Value": "Mobile Safari"}


def test_risky_user_and_risky_service_principal() -> None:
    fields = fields_of("risky_user", "risky_user")
    assert fields["user"] == {
        "id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
        "name": "Megan Bowen",
        "email": "MeganB@contoso.onmicrosoft.com",
    }
    assert fields["azure"]["entraid"]["risky_user"] == {
        "id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
        "risk_level": "medium",
        "risk_state": "atRisk",
        "risk_detail": "none",
        "is_deleted": False,
        "is_processing": True,
    }
    principal = {
        "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "appId": "3f0e2c5a-6b7d-4c8e-9f1a-2b3c4d5e6f7a",
        "displayName": "Contoso HR Sync",
        "riskLevel": "high",
        "riskLastUpdatedDateTime": "2024-05-14T08:00:00Z",
    }
    fields = normalize(principal, record_type_for_category("RiskyServicePrincipals")).fields
    assert fields["service"] == {"id": "3f0e2c5a-6b7d-4c8e-9f1a-2b3c4d5e6f7a", "name": "Contoso HR Sync"}
    assert "user" not in fields


def test_alert_takes_user_and_source_from_the_first_evidence_of_each_kind() -> None:
    record = load("alert_with_evidence")
    result = normalize(record, "alert")
    fields = result.fields
    assert format_timestamp(result.timestamp) == "2024-05-14T08:33:01.147Z"
    assert fields["user"] == {
        "id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
        "name": "Megan Bowen",
        "email": "MeganB@contoso.onmicrosoft.com",
    }
    assert fields["source"]["ip"] == "2001:db8:85a3::8a2e:370:7334"
    assert fields["related"] == {"ip": ["2001:db8:85a3::8a2e:370:7334"], "user": ["Megan Bowen"]}
    own = fields["azure"]["entraid"]["alert"]
    assert own["incident_id"] == "28282"
    assert own["severity"] == "medium"
    assert own["mitre_techniques"] == ["T1078"]
    assert own["last_update_date_time"] == "2024-05-14T09:12:44.907Z"
    assert "classification" not in own
    assert len(own["evidence"]) == 3
    assert record_time(record, "alert") == epoch("2024-05-14T09:12:44.907")


def test_incident_own_fields_and_alert_ids() -> None:
    result = normalize(load("incident"), "incident")
    own = result.fields["azure"]["entraid"]["incident"]
    assert own["display_name"] == "Unfamiliar sign-in properties involving one user"
    assert own["classification"] == "truePositive"
    assert own["custom_tags"] == ["VIP"]
    assert own["system_tags"] == ["Credential Phish"]
    assert own["comments"][0]["comment"] == "Password reset requested."
    assert own["alert_ids"] == ["da637551227677560813_-961444813"]
    assert "description" not in own
    assert format_timestamp(result.timestamp) == "2024-05-14T08:33:02.246Z"


@pytest.mark.parametrize(
    ("category", "record_type"),
    [("SignInLogs", "signinlogs"), ("NonInteractiveUserSignInLogs", "signinlogs"),
     ("ServicePrincipalSignInLogs", "signinlogs"), ("ManagedIdentitySignInLogs", "signinlogs"),
     ("AuditLogs", "auditlogs"), ("ProvisioningLogs", "provisioning"), ("UserRiskEvents", "risk_detection"),
     ("ServicePrincipalRiskEvents", "risk_detection"), ("RiskyUsers", "risky_user"),
     ("RiskyServicePrincipals", "risky_user"), ("auditlogs", "auditlogs"), ("Administrative", None),
     ("MicrosoftGraphActivityLogs", None), (None, None), (7, None)],
)
def test_event_hub_category_to_record_type(category: Any, record_type: str | None) -> None:
    assert record_type_for_category(category) == record_type


# --- odd input ------------------------------------------------------------------------------------------------------

ALL_FIXTURES = [(name, "signinlogs") for name in SIGNIN_FIXTURES] + [
    (name, "auditlogs") for name in AUDIT_FIXTURES
] + OTHER_FIXTURES
ODD_VALUES = [None, "", " ", 0, -1, 1.5, True, [], {}, ["x", None, 3], {"nested": None}, "not-a-time:99999"]


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = []
    items = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    for key, item in items:
        paths.append((*prefix, key))
        paths.extend(paths_of(item, (*prefix, key)))
    return paths


def without_policies(fields: dict[str, Any]) -> dict[str, Any]:
    """The result minus the sign-in policy list, which is documented to be kept exactly as Microsoft wrote it."""
    fields = copy.deepcopy(fields)
    fields.get("azure", {}).get("entraid", {}).get("properties", {}).pop("appliedConditionalAccessPolicies", None)
    return fields


@pytest.mark.parametrize(("name", "record_type"), ALL_FIXTURES)
def test_any_member_replaced_by_an_odd_value_still_maps_without_nulls(name: str, record_type: str) -> None:
    record = load(name)
    for path in paths_of(record):
        for odd in ODD_VALUES:
            changed = copy.deepcopy(record)
            parent = changed
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = odd
            result = normalize(changed, record_type)
            assert_no_nulls_and_plain_json(without_policies(result.fields), f"{name}:{path}={odd!r}")
            orjson.dumps(result.fields)


@pytest.mark.parametrize("record", [None, [], "text", 42, {}, {"status": None, "location": "Paris", "deviceDetail": 5}])
@pytest.mark.parametrize("record_type", [*RECORD_TYPES, "unknown_type"])
def test_records_that_are_not_objects_or_are_empty_give_only_the_common_fields(record: Any, record_type: str) -> None:
    result = normalize(record, record_type, envelope="not an envelope")  # type: ignore[arg-type]
    assert result.fields["cloud"]["provider"] == "Azure"
    assert "source" not in result.fields
    assert "user" not in result.fields
    assert result.timestamp is None


@pytest.mark.parametrize(
    ("error_code", "code", "outcome"),
    [
        (0, "0", "success"),
        ("0", "0", "success"),
        (0.0, "0", "success"),
        ("50126", "50126", "failure"),
        ("AADSTS50126", "AADSTS50126", "failure"),
        (" 50076 ", "50076", "failure"),
        (True, None, "unknown"),
        ("", None, "unknown"),
        ({"code": 1}, None, "unknown"),
    ],
)
def test_signin_error_codes_of_any_type(error_code: Any, code: str | None, outcome: str) -> None:
    record = {**load("signin_failed_password"), "status": {"errorCode": error_code, "failureReason": "Bad password"}}
    event = normalize(record, "signinlogs").fields["event"]
    assert event.get("code") == code
    assert event["outcome"] == outcome


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("81.2.69.143:51234", {"address": "81.2.69.143:51234", "ip": "81.2.69.143", "port": 51234}),
        ("[2001:db8::1]:443", {"address": "[2001:db8::1]:443", "ip": "2001:db8::1", "port": 443}),
        ("2001:DB8:0:0:0:0:0:1", {"address": "2001:DB8:0:0:0:0:0:1", "ip": "2001:db8::1"}),
        ("fe80::1%eth0", {"address": "fe80::1%eth0", "ip": "fe80::1%eth0"}),
        (" 81.2.69.143 ", {"address": " 81.2.69.143 ", "ip": "81.2.69.143"}),
        ("81.2.69.143:99999", {"address": "81.2.69.143:99999", "ip": "81.2.69.143"}),
        ("unknown", {"address": "unknown"}),
        ("[2001:db8::1", {"address": "[2001:db8::1"}),
    ],
)
def test_signin_addresses_with_ports_ipv6_and_non_ips(address: str, source: dict[str, Any]) -> None:
    record = {**load("signin_no_location_device"), "ipAddress": address}
    fields = normalize(record, "signinlogs").fields
    assert fields["source"] == source
    if "ip" in source:
        assert fields["related"]["ip"] == [source["ip"]]
    else:
        assert "ip" not in fields["related"]


@pytest.mark.parametrize(
    ("coordinates", "location"),
    [
        ({"latitude": "52.37", "longitude": "4.88"}, {"lat": 52.37, "lon": 4.88}),
        ({"latitude": 0, "longitude": 0}, {"lat": 0.0, "lon": 0.0}),
        ({"latitude": 52.37}, None),
        ({"latitude": 91, "longitude": 4.88}, None),
        ({"latitude": True, "longitude": 4.88}, None),
        ({"latitude": "north", "longitude": 4.88}, None),
        ([52.37, 4.88], None),
    ],
)
def test_signin_geo_coordinates_of_odd_shapes(coordinates: Any, location: dict[str, float] | None) -> None:
    record = load("signin_failed_password")
    record["location"]["geoCoordinates"] = coordinates
    geo = normalize(record, "signinlogs").fields["source"]["geo"]
    assert geo.get("location") == location
    assert geo["city_name"] == "Amsterdam"


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), ("True", "true"), ("false", "false"),
                                             ("yes", None), (1, None), (None, None)])
def test_signin_is_interactive_is_always_a_lowercase_string(value: Any, text: str | None) -> None:
    record = {**load("signin_noninteractive"), "isInteractive": value}
    assert normalize(record, "signinlogs").fields["azure"]["entraid"]["properties"].get("isInteractive") == text


def test_signin_lists_keep_only_their_strings_and_policies_only_objects() -> None:
    record = load("signin_interactive_success")
    record["riskEventTypes"] = ["unfamiliarFeatures", None, 7, "anonymizedIPAddress"]
    record["appliedConditionalAccessPolicies"].append("broken")
    properties = normalize(record, "signinlogs").fields["azure"]["entraid"]["properties"]
    assert properties["riskEventTypes"] == ["unfamiliarFeatures", "anonymizedIPAddress"]
    assert len(properties["appliedConditionalAccessPolicies"]) == 2


def test_numbers_where_text_is_expected_become_text_so_the_field_keeps_its_type() -> None:
    record = {**load("signin_interactive_success"), "appId": 12345, "userDisplayName": {"first": "Adele"}}
    fields = normalize(record, "signinlogs").fields
    assert fields["service"]["id"] == "12345"
    assert "name" not in fields["user"]
    assert "user" not in fields["related"]
