"""Diagnostic-settings records → fileset and ECS fields, as the `azure` module maps them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.inputs.eventhub_decoder import decode_body
from forwarder.modules.azure_ecs import normalize
from forwarder.modules.azure_ecs_envelope import duration_nanoseconds
from forwarder.modules.azure_routing import CategoryRouter, fileset_for_category
from forwarder.modules.entraid_ecs import normalize as normalize_graph_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure"
ENTRAID_FIXTURES = {
    "signinlogs_interactive_failure.json": ("signinlogs", "signinlogs"),
    "signinlogs_noninteractive.json": ("signinlogs", "signinlogs"),
    "signinlogs_service_principal.json": ("signinlogs", "signinlogs"),
    "signinlogs_managed_identity.json": ("signinlogs", "signinlogs"),
    "auditlogs_update_user.json": ("auditlogs", "auditlogs"),
    "provisioning_create_failure.json": ("provisioning", "provisioning"),
}


def records(name: str) -> list[dict[str, Any]]:
    return decode_body((FIXTURES / name).read_bytes()).records


def mapped(name: str, index: int = 0) -> tuple[dict[str, Any], float | None]:
    record = records(name)[index]
    return normalize(record, fileset_for_category(record.get("category") or record.get("Category")))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def assert_plain_json_without_nulls(value: Any, path: str = "") -> None:
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert_plain_json_without_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_plain_json_without_nulls(item, f"{path}[{index}]")
    else:
        assert type(value) in (str, int, float, bool), f"{type(value).__name__} at {path}"


# Routing


@pytest.mark.parametrize(("category", "fileset"), [
    ("SignInLogs", "signinlogs"),
    ("NonInteractiveUserSignInLogs", "signinlogs"),
    ("ServicePrincipalSignInLogs", "signinlogs"),
    ("ManagedIdentitySignInLogs", "signinlogs"),
    ("AuditLogs", "auditlogs"),
    ("ProvisioningLogs", "provisioning"),
    ("RiskyUsers", "identity_protection"),
    ("UserRiskEvents", "identity_protection"),
    ("RiskyServicePrincipals", "identity_protection"),
    ("ServicePrincipalRiskEvents", "identity_protection"),
    ("MicrosoftGraphActivityLogs", "graphactivitylogs"),
    ("Administrative", "activitylogs"),
    ("Security", "activitylogs"),
    ("ServiceHealth", "activitylogs"),
    ("Alert", "activitylogs"),
    ("Recommendation", "activitylogs"),
    ("Policy", "activitylogs"),
    ("Autoscale", "activitylogs"),
    ("ResourceHealth", "activitylogs"),
    ("AuditEvent", "platformlogs"),
    ("ADFSSignInLogs", "platformlogs"),
    ("", "platformlogs"),
    (None, "platformlogs"),
    (7, "platformlogs"),
])
def test_categories_route_to_filesets(category: Any, fileset: str) -> None:
    assert fileset_for_category(category) == fileset


def test_categories_match_whatever_their_casing() -> None:
    assert fileset_for_category("signinlogs") == "signinlogs"
    assert fileset_for_category("NONINTERACTIVEUSERSIGNINLOGS") == "signinlogs"
    assert fileset_for_category("administrative") == "activitylogs"
    assert CategoryRouter().route({"Category": "AuditLogs"}).fileset == "auditlogs"


def test_a_hub_carrying_mixed_categories_routes_every_record_to_its_fileset() -> None:
    every_record = [record for path in sorted(FIXTURES.glob("*.json")) for record in records(path.name)]
    body = orjson.dumps({"records": every_record})
    router = CategoryRouter(["signinlogs", "auditlogs", "identity_protection", "provisioning", "graphactivitylogs",
                             "activitylogs", "platformlogs"])
    routes = [router.route(record) for record in decode_body(body).records]
    assert [(route.category, route.fileset) for route in routes] == [
        ("Administrative", "activitylogs"),
        ("AuditLogs", "auditlogs"),
        ("MicrosoftGraphActivityLogs", "graphactivitylogs"),
        ("UserRiskEvents", "identity_protection"),
        ("RiskyUsers", "identity_protection"),
        ("AuditEvent", "platformlogs"),
        ("ProvisioningLogs", "provisioning"),
        ("SignInLogs", "signinlogs"),
        ("ManagedIdentitySignInLogs", "signinlogs"),
        ("NonInteractiveUserSignInLogs", "signinlogs"),
        ("ServicePrincipalSignInLogs", "signinlogs"),
    ]
    assert all(route.expected for route in routes)
    assert router.unexpected == {}


def test_records_outside_the_consumers_filesets_are_routed_and_counted_and_flagged_once_per_category() -> None:
    router = CategoryRouter(["signinlogs"])
    routes = [router.route(record) for record in (
        {"category": "SignInLogs"}, {"category": "AuditLogs"}, {"category": "AuditLogs"}, {"category": "auditlogs"},
        {"category": "AuditEvent"}, {"properties": {}}, "not an object",
    )]
    assert [(route.fileset, route.expected, route.first_unexpected) for route in routes] == [
        ("signinlogs", True, False),
        ("auditlogs", False, True),
        ("auditlogs", False, False),
        ("auditlogs", False, True),
        ("platformlogs", False, True),
        ("platformlogs", False, True),
        ("platformlogs", False, False),
    ]
    assert router.unexpected == {"AuditLogs": 2, "auditlogs": 1, "AuditEvent": 1, "(none)": 2}


def test_a_new_unexpected_category_replaces_the_counts_a_stats_reader_may_be_walking() -> None:
    shown: list[dict[str, int]] = []
    router = CategoryRouter(["signinlogs"], on_new_category=shown.append)
    router.route({"category": "AuditLogs"})
    first = router.unexpected
    router.route({"category": "AuditLogs"})
    router.route({"category": "Administrative"})
    assert first == {"AuditLogs": 2}  # counted in place; the new category went into a new dict
    assert shown == [first, router.unexpected] and router.unexpected == {"AuditLogs": 2, "Administrative": 1}


# Entra ID records: the Graph path's mapping, plus the envelope


@pytest.mark.parametrize("name", sorted(ENTRAID_FIXTURES))
def test_entraid_records_get_the_same_fields_as_on_the_graph_path(name: str) -> None:
    fileset, record_type = ENTRAID_FIXTURES[name]
    record = records(name)[0]
    graph_fields, graph_time = normalize_graph_record(copy.deepcopy(record["properties"]), record_type)
    fields, timestamp = normalize(record, fileset)
    for key, value in graph_fields.items():
        if key == "event":
            assert fields["event"].items() >= {k: v for k, v in value.items() if k != "duration"}.items()
        elif key == "azure":
            assert fields["azure"]["entraid"] == value["entraid"]
        else:
            assert fields[key] == value, key
    assert timestamp == graph_time
    assert fields["cloud"] == {"provider": "Azure", "service": {"name": "Azure EntraId"}}


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_every_record_maps_to_plain_json_without_nulls(name: str) -> None:
    for index in range(len(records(name))):
        fields, timestamp = mapped(name, index)
        assert_plain_json_without_nulls(fields)
        assert timestamp is not None
        assert fields["event"]["kind"] == "event"
        orjson.dumps(fields)


def test_failed_interactive_signin() -> None:
    fields, timestamp = mapped("signinlogs_interactive_failure.json")
    assert timestamp == epoch("2024-05-14T07:58:03.118")
    assert fields["event"] == {
        "category": ["authentication"], "type": ["start"], "code": "50126", "outcome": "failure",
        "provider": "Office 365 Exchange Online", "kind": "event", "action": "Sign-in activity", "duration": 0,
    }
    assert fields["error"] == {"message": "Error validating credentials due to invalid username or password."}
    assert fields["azure"]["signinlogs"] == {
        "operation_name": "Sign-in activity",
        "operation_version": "1.0",
        "category": "SignInLogs",
        "result_type": "50126",
        "result_signature": "None",
        "result_description": "Error validating credentials due to invalid username or password.",
        "identity": "Megan Bowen",
    }
    assert fields["azure"]["tenant_id"] == "2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d"
    assert fields["azure"]["correlation_id"] == "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
    assert fields["azure"]["resource"] == {
        "id": "/tenants/2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d/providers/Microsoft.aadiam",
        "namespace": "Microsoft.aadiam", "provider": "Microsoft.aadiam",
    }
    assert fields["log"] == {"level": "4"}
    assert fields["source"]["ip"] == "203.0.113.77"
    assert fields["user"] == {"id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7", "name": "Megan Bowen",
                              "email": "MeganB@contoso.onmicrosoft.com"}
    assert fields["trace"] == {"id": "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"}


def test_managed_identity_signin_with_duration_as_text_and_lowercase_level() -> None:
    fields, _ = mapped("signinlogs_managed_identity.json")
    assert fields["event"]["duration"] == 497_815_000_000
    assert fields["log"] == {"level": "Informational"}
    assert fields["azure"]["signinlogs"]["category"] == "ManagedIdentitySignInLogs"
    assert "source" not in fields
    assert "related" not in fields
    assert fields["service"] == {"id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910", "name": "vm-web-01"}


def test_service_principal_signin_has_a_service_and_an_address_but_no_user() -> None:
    fields, _ = mapped("signinlogs_service_principal.json")
    assert fields["service"] == {"id": "2b7c9d1e-4f3a-4e5b-8c6d-9e0f1a2b3c4d", "name": "contoso-backup-job"}
    assert fields["source"]["ip"] == "20.190.151.70"
    assert "user" not in fields
    assert fields["event"]["outcome"] == "success"
    assert "identity" not in fields["azure"]["signinlogs"]


def test_audit_record_by_an_app_takes_the_caller_address_from_the_envelope() -> None:
    fields, timestamp = mapped("auditlogs_update_user.json")
    assert timestamp == epoch("2024-05-14T10:41:43.721")
    assert fields["event"]["action"] == "Update user"
    assert fields["event"]["outcome"] == "success"
    assert fields["service"] == {"name": "Microsoft Substrate Management"}
    assert fields["source"] == {"address": "131.107.159.37", "ip": "131.107.159.37"}
    assert fields["related"] == {"ip": ["131.107.159.37"]}
    assert fields["log"] == {"level": "Informational"}
    assert fields["azure"]["auditlogs"]["identity"] == "Microsoft Substrate Management"
    assert fields["azure"]["entraid"]["audit"]["target_resources"][0]["type"] == "User"


def test_provisioning_duration_is_the_provisionings_own() -> None:
    fields, _ = mapped("provisioning_create_failure.json")
    assert fields["event"]["duration"] == 2_104_000_000
    assert fields["event"]["outcome"] == "failure"
    assert fields["event"]["action"] == "Create"
    assert fields["azure"]["provisioning"]["result_type"] == "Failure"
    assert "source" not in fields


def test_identity_protection_risk_event_and_risky_user() -> None:
    risk_event, risk_time = mapped("identity_protection.json", 0)
    assert risk_time == epoch("2024-05-14T08:25:10.500")
    assert risk_event["azure"]["entraid"]["risk_detection"]["risk_event_type"] == "unfamiliarFeatures"
    assert risk_event["source"]["ip"] == "2001:db8:85a3::8a2e:370:7334"
    assert risk_event["azure"]["identity_protection"]["category"] == "UserRiskEvents"
    risky_user, user_time = mapped("identity_protection.json", 1)
    assert user_time == epoch("2024-05-14T08:31:52.814")
    assert risky_user["azure"]["entraid"]["risky_user"]["risk_level"] == "medium"
    assert risky_user["azure"]["identity_protection"]["category"] == "RiskyUsers"


# Azure Monitor records


def test_graph_activity_request() -> None:
    fields, timestamp = mapped("graphactivitylogs.json")
    assert timestamp == epoch("2024-05-14T11:05:31.412")
    assert fields["cloud"] == {"provider": "azure"}
    assert fields["http"] == {"request": {"method": "GET"}, "response": {"status_code": 403, "bytes": 312}}
    assert fields["url"] == {
        "original": "https://graph.microsoft.com/v1.0/users?$select=id,displayName&$top=999",
        "scheme": "https", "domain": "graph.microsoft.com", "path": "/v1.0/users",
        "query": "$select=id,displayName&$top=999",
    }
    assert fields["user_agent"] == {"original": "python-requests/2.31.0"}
    assert fields["source"] == {"address": "198.51.100.23", "ip": "198.51.100.23"}
    assert fields["event"]["outcome"] == "failure"
    assert fields["event"]["duration"] == 146_000_000
    assert (fields["event"]["category"], fields["event"]["type"]) == (["web"], ["access"])
    assert fields["azure"]["tenant_id"] == "2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d"
    properties = fields["azure"]["graphactivitylogs"]["properties"]
    assert properties["app_id"] == "2b7c9d1e-4f3a-4e5b-8c6d-9e0f1a2b3c4d"
    assert properties["client_auth_method"] == "1"
    assert properties["roles"] == "User.Read.All AuditLog.Read.All"
    assert "scopes" not in properties and "user_id" not in properties
    assert "user" not in fields


def test_graph_activity_without_envelope_time_uses_time_generated() -> None:
    record = records("graphactivitylogs.json")[0]
    del record["time"]
    record["properties"]["responseStatusCode"] = "200"
    fields, timestamp = normalize(record, "graphactivitylogs")
    assert timestamp == epoch("2024-05-14T11:05:31.412")
    assert fields["event"]["outcome"] == "success"


def test_administrative_activity_log() -> None:
    fields, timestamp = mapped("activitylogs_administrative.json")
    assert timestamp == epoch("2024-05-14T12:20:05.653")
    assert fields["cloud"] == {"provider": "azure"}
    assert fields["event"] == {"kind": "event", "action": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
                               "duration": 397_000_000, "outcome": "success"}
    assert fields["source"] == {"address": "192.0.2.44", "ip": "192.0.2.44"}
    assert fields["user"] == {"name": "MeganB@contoso.onmicrosoft.com", "full_name": "Megan Bowen",
                              "id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7"}
    assert fields["related"] == {"ip": ["192.0.2.44"], "user": ["MeganB@contoso.onmicrosoft.com"]}
    assert fields["log"] == {"level": "Information"}
    azure = fields["azure"]
    assert azure["subscription_id"] == "3F2E1D0C-9B8A-4765-8432-10FEDCBA9876"
    assert azure["resource"] == {
        "id": "/SUBSCRIPTIONS/3F2E1D0C-9B8A-4765-8432-10FEDCBA9876/RESOURCEGROUPS/RG-PROD-WEU/PROVIDERS/"
              "MICROSOFT.STORAGE/STORAGEACCOUNTS/CONTOSOPRODLOGS",
        "group": "RG-PROD-WEU", "namespace": "MICROSOFT.STORAGE", "provider": "MICROSOFT.STORAGE/STORAGEACCOUNTS",
        "name": "CONTOSOPRODLOGS",
    }
    activity = azure["activitylogs"]
    assert activity["operation_name"] == "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION"
    assert (activity["result_type"], activity["result_signature"]) == ("Success", "Succeeded.OK")
    assert activity["event_category"] == "Administrative"
    assert "serviceRequestId" not in activity["properties"]
    assert activity["properties"]["statusCode"] == "OK"
    identity = activity["identity"]
    assert identity["authorization"]["evidence"]["role"] == "Storage Account Contributor"
    assert identity["claims"]["http://schemas_xmlsoap_org/ws/2005/05/identity/claims/upn"] == \
        "MeganB@contoso.onmicrosoft.com"
    assert all("." not in key for key in identity["claims"])
    assert identity["claims_initiated_by_user"] == {"fullname": "Megan Bowen", "givenname": "Megan",
                                                    "surname": "Bowen", "name": "MeganB@contoso.onmicrosoft.com"}


@pytest.mark.parametrize(("result_type", "outcome"), [
    ("Success", "success"), ("Succeeded", "success"), ("Failure", "failure"), ("Failed", "failure"),
    ("Start", None), ("Accept", None), (None, None),
])
def test_activity_log_outcome_from_result_type(result_type: str | None, outcome: str | None) -> None:
    record = records("activitylogs_administrative.json")[0]
    record["resultType"] = result_type
    fields, _ = normalize(record, "activitylogs")
    assert fields["event"].get("outcome") == outcome


def test_activity_log_identity_written_as_a_name_stays_out_of_the_identity_object() -> None:
    record = records("activitylogs_administrative.json")[0]
    record["identity"] = "Megan Bowen"
    fields, _ = normalize(record, "activitylogs")
    assert fields["azure"]["activitylogs"]["identity_name"] == "Megan Bowen"
    assert "identity" not in fields["azure"]["activitylogs"]
    assert "user" not in fields


def test_platform_log_with_capitalised_envelope_keys_and_an_address_with_a_port() -> None:
    fields, timestamp = mapped("platformlogs_keyvault.json")
    assert timestamp == epoch("2024-05-14T12:31:09.884")
    assert fields["source"] == {"address": "10.20.30.40:51234", "ip": "10.20.30.40", "port": 51234}
    assert fields["log"] == {"level": "Informational"}
    assert fields["event"]["action"] == "SecretGet"
    assert fields["event"]["outcome"] == "success"
    assert fields["event"]["duration"] == 12_000_000
    assert fields["azure"]["resource"]["provider"] == "MICROSOFT.KEYVAULT/VAULTS"
    assert fields["azure"]["resource"]["name"] == "CONTOSO-KV"
    platform = fields["azure"]["platformlogs"]
    assert platform["category"] == "AuditEvent"
    assert platform["properties"]["httpStatusCode"] == 200
    assert "result_description" not in platform


def test_platform_log_with_properties_as_text_and_a_service_name_as_caller() -> None:
    record = {"time": "2024-05-14T12:00:00Z", "category": "StorageWrite", "callerIpAddress": "Microsoft.Advisor",
              "properties": '{"accountName": "contosoprodlogs"}'}
    fields, _ = normalize(record, "platformlogs")
    assert fields["azure"]["platformlogs"]["properties_text"] == '{"accountName": "contosoprodlogs"}'
    assert "source" not in fields


def test_resource_id_of_a_child_resource() -> None:
    record = {"time": "2024-05-14T12:00:00Z", "category": "Administrative",
              "resourceId": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1/"
                            "extensions/MicrosoftMonitoringAgent"}
    fields, _ = normalize(record, "activitylogs")
    assert fields["azure"]["resource"] == {
        "id": record["resourceId"], "group": "rg1", "namespace": "Microsoft.Compute",
        "provider": "Microsoft.Compute/virtualMachines", "name": "vm1/extensions/MicrosoftMonitoringAgent",
    }
    assert fields["azure"]["subscription_id"] == "s1"


def test_a_record_without_time_has_no_timestamp_and_a_non_object_maps_to_the_provider_only() -> None:
    fields, timestamp = normalize({"category": "AuditEvent", "operationName": "SecretList"}, "platformlogs")
    assert timestamp is None
    assert fields["event"] == {"kind": "event", "action": "SecretList"}
    assert normalize(["not", "an", "object"], "platformlogs") == ({"cloud": {"provider": "azure"}}, None)


@pytest.mark.parametrize(("value", "nanoseconds"), [
    (0, 0), (12, 12_000_000), (1.5, 1_500_000), ("497815", 497_815_000_000), (" 2.25 ", 2_250_000),
    ("soon", None), (-1, None), (True, None), (None, None), (float("nan"), None), ("inf", None),
])
def test_duration_in_milliseconds_as_number_or_text(value: Any, nanoseconds: int | None) -> None:
    assert duration_nanoseconds(value) == nanoseconds
