"""The Office 365 audit record → ECS mapping, per workload, on records shaped like Microsoft's schema documentation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forwarder.modules.o365_ecs import normalize, outcome, record_type_name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "o365"
ALL_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))
TENANT = "contoso.onmicrosoft.com"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fields_of(name: str, tenant_name: str | None = TENANT) -> dict[str, Any]:
    return normalize(load(name), tenant_name)[0]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def assert_no_nulls(value: Any, path: str = "") -> None:
    assert value is not None, f"null at {path}"
    if type(value) is dict:
        for key, item in value.items():
            assert_no_nulls(item, f"{path}.{key}")
    elif type(value) is list:
        for index, item in enumerate(value):
            assert_no_nulls(item, f"{path}[{index}]")


# --- every record ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_raw_field_is_kept_unchanged_and_the_record_is_not_modified(name: str) -> None:
    record = load(name)
    original = copy.deepcopy(record)
    fields, _ = normalize(record, TENANT)
    assert fields["o365"]["audit"] == original
    assert record == original
    assert fields["o365"]["audit"] is not record


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_record_gets_the_common_fields_and_no_nulls(name: str) -> None:
    record = load(name)
    fields, timestamp = normalize(record, TENANT)
    assert fields["event"]["id"] == record["Id"]
    renamed = {"Add user.": "added-user-account", "MemberAdded": "added-users-to-group"}
    assert fields["event"]["action"] == renamed.get(record["Operation"], record["Operation"])
    assert fields["event"]["provider"] == record["Workload"]
    assert fields["event"]["kind"] in ("event", "alert")
    assert fields["organization"] == {"id": record["OrganizationId"], "name": TENANT}
    assert fields["host"] == {"id": record["OrganizationId"].lower(), "name": TENANT}
    assert timestamp is not None and timestamp // 1 == epoch(record["CreationTime"][:19])
    assert_no_nulls({key: value for key, value in fields.items() if key != "o365"})


# --- Entra ID sign-ins -----------------------------------------------------------------------------------------------


def test_failed_sts_logon_is_an_authentication_failure_with_the_client_address() -> None:
    fields = fields_of("aad_sts_logon_failed")
    assert fields["event"]["code"] == "AzureActiveDirectoryStsLogon"
    assert fields["event"]["action"] == "UserLoginFailed"
    assert fields["event"]["outcome"] == "failure"
    assert fields["event"]["category"] == ["authentication"]
    assert fields["event"]["type"] == ["start", "authentication_failure"]
    assert fields["user"] == {
        "id": "Megan.Bowen@contoso.onmicrosoft.com",
        "email": "Megan.Bowen@contoso.onmicrosoft.com",
        "name": "Megan.Bowen",
        "domain": "contoso.onmicrosoft.com",
    }
    assert fields["client"] == {"address": "203.0.113.45", "ip": "203.0.113.45"}
    assert fields["source"] == {"ip": "203.0.113.45"}
    assert fields["network"] == {"type": "ipv4"}
    assert fields["user_agent"]["original"].startswith("Mozilla/5.0 (Windows NT 10.0")
    assert fields["related"] == {"ip": ["203.0.113.45"], "user": ["Megan.Bowen"]}


def test_successful_sts_logon_from_a_bare_ipv6_address() -> None:
    fields = fields_of("aad_sts_logon_success")
    assert fields["event"]["outcome"] == "success"
    assert fields["event"]["type"] == ["start", "authentication_success"]
    assert fields["client"] == {"address": "2001:db8:4f2a:100::1b", "ip": "2001:db8:4f2a:100::1b"}
    assert fields["source"] == {"ip": "2001:db8:4f2a:100::1b"}
    assert fields["network"] == {"type": "ipv6"}
    assert fields["user_agent"]["original"].startswith("Microsoft Office/16.0")


def test_sts_logon_without_result_status_is_still_a_logon_but_claims_no_outcome() -> None:
    record = load("aad_sts_logon_success")
    del record["ResultStatus"]
    fields, _ = normalize(record, TENANT)
    assert "outcome" not in fields["event"]
    assert fields["event"]["type"] == ["start"]


# --- Entra ID directory changes --------------------------------------------------------------------------------------


def test_added_user_gets_filebeats_iam_action_and_the_target_user() -> None:
    fields = fields_of("aad_add_user")
    assert fields["event"]["code"] == "AzureActiveDirectory"
    assert fields["event"]["action"] == "added-user-account"
    assert fields["event"]["category"] == ["iam"]
    assert fields["event"]["type"] == ["user", "creation"]
    assert fields["event"]["outcome"] == "success"
    assert fields["user"]["target"] == {
        "id": "Alex.Wilber@contoso.onmicrosoft.com",
        "email": "Alex.Wilber@contoso.onmicrosoft.com",
        "name": "Alex.Wilber",
        "domain": "contoso.onmicrosoft.com",
    }
    assert fields["user"]["name"] == "admin"
    assert fields["related"]["user"] == ["admin", "Alex.Wilber"]
    assert "client" not in fields and "source" not in fields
    # The name/value lists stay as Microsoft wrote them.
    assert fields["o365"]["audit"]["ModifiedProperties"][0]["Name"] == "AccountEnabled"


def test_other_directory_operations_keep_their_name_and_are_iam_info() -> None:
    record = load("aad_add_user")
    record["Operation"] = "Add member to group."
    fields, _ = normalize(record, TENANT)
    assert fields["event"]["action"] == "Add member to group."
    assert (fields["event"]["category"], fields["event"]["type"]) == (["iam"], ["info"])
    assert "target" not in fields["user"]


# --- Exchange --------------------------------------------------------------------------------------------------------


def test_exchange_admin_cmdlet_with_ip_and_port_and_the_originating_server() -> None:
    fields = fields_of("exchange_admin_new_inbox_rule")
    assert fields["event"]["code"] == "ExchangeAdmin"
    assert fields["event"]["action"] == "New-InboxRule"
    assert fields["event"]["outcome"] == "success"  # ResultStatus "True"
    assert (fields["event"]["category"], fields["event"]["type"]) == (["configuration"], ["change"])
    assert fields["client"] == {"address": "198.51.100.77:49832", "ip": "198.51.100.77", "port": 49832}
    assert fields["source"] == {"ip": "198.51.100.77", "port": 49832}
    assert fields["server"] == {"address": "AM6PR08MB4123 (15.20.7386.012)"}
    assert "destination" not in fields
    assert fields["o365"]["audit"]["Parameters"][2] == {"Name": "ForwardTo", "Value": "exfil@example.net"}


def test_mail_items_accessed_takes_the_client_address_from_client_ip_address() -> None:
    fields = fields_of("exchange_mail_items_accessed")
    assert fields["event"]["code"] == "ExchangeItemAggregated"
    assert fields["event"]["action"] == "MailItemsAccessed"
    assert (fields["event"]["category"], fields["event"]["type"]) == (["email"], ["info"])
    assert fields["client"] == {"address": "2001:db8:7d1::4", "ip": "2001:db8:7d1::4"}
    assert fields["source"]["ip"] == "2001:db8:7d1::4"
    assert fields["user"]["id"] == "Megan.Bowen@contoso.onmicrosoft.com"
    assert fields["user"]["email"] == "Megan.Bowen@contoso.onmicrosoft.com"
    assert fields["server"] == {"address": "DB9PR08MB6644 (15.20.7386.012)"}


def test_exchange_item_send_with_bracketed_ipv6_and_port_and_the_mailbox_owner() -> None:
    record = load("exchange_item_send")
    record["UserId"] = "assistant@contoso.onmicrosoft.com"  # a delegate sends on the owner's behalf
    fields, timestamp = normalize(record, TENANT)
    assert fields["event"]["code"] == "ExchangeItem"
    assert fields["client"] == {"address": "[2001:db8:7d1::4]:52314", "ip": "2001:db8:7d1::4", "port": 52314}
    assert fields["source"] == {"ip": "2001:db8:7d1::4", "port": 52314}
    assert fields["user"] == {
        "id": "assistant@contoso.onmicrosoft.com",
        "email": "Megan.Bowen@contoso.onmicrosoft.com",
        "name": "assistant",
        "domain": "contoso.onmicrosoft.com",
        "full_name": "Megan Bowen",
    }
    assert "process" not in fields  # ClientProcessName is empty
    assert timestamp == epoch("2024-03-12T15:04:19.617")


# --- SharePoint / OneDrive -------------------------------------------------------------------------------------------


def test_file_downloaded_maps_the_file_and_url() -> None:
    fields = fields_of("sharepoint_file_downloaded")
    record = load("sharepoint_file_downloaded")
    assert fields["event"]["code"] == "SharePointFileOperation"
    assert fields["event"]["provider"] == "OneDrive"
    assert (fields["event"]["category"], fields["event"]["type"]) == (["file"], ["access"])
    assert "outcome" not in fields["event"]
    assert fields["url"] == {"original": record["ObjectId"]}
    assert fields["file"] == {"name": "Q1 forecast.xlsx", "extension": "xlsx", "directory": "Documents/Finance"}
    assert fields["user_agent"]["original"] == record["UserAgent"]
    assert fields["source"] == {"ip": "192.0.2.146"}


@pytest.mark.parametrize(("operation", "category", "event_type"), [
    ("FileUploaded", "file", "creation"),
    ("FileDeleted", "file", "deletion"),
    ("FileModified", "file", "change"),
    ("ComplianceSettingChanged", "configuration", "change"),
    ("FilePreviewed", "file", "info"),
])
def test_file_operations_get_their_category_and_type(operation: str, category: str, event_type: str) -> None:
    record = load("sharepoint_file_downloaded")
    record["Operation"] = operation
    fields, _ = normalize(record, TENANT)
    assert (fields["event"]["category"], fields["event"]["type"]) == ([category], [event_type])


# --- Teams -----------------------------------------------------------------------------------------------------------


def test_teams_member_added_relates_every_member() -> None:
    fields = fields_of("teams_member_added")
    assert fields["event"]["code"] == "MicrosoftTeams"
    assert fields["event"]["action"] == "added-users-to-group"
    assert (fields["event"]["category"], fields["event"]["type"]) == (["iam"], ["group", "change"])
    assert fields["related"]["user"] == [
        "Megan.Bowen", "Alex.Wilber@contoso.onmicrosoft.com", "partner_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    ]
    assert "client" not in fields


def test_team_created_names_the_group() -> None:
    record = load("teams_member_added")
    record["Operation"] = "TeamCreated"
    fields, _ = normalize(record, TENANT)
    assert fields["event"]["action"] == "added-group-account-to"
    assert fields["group"] == {"name": "Finance"}


# --- DLP -------------------------------------------------------------------------------------------------------------


def test_blocked_sharepoint_dlp_match_is_a_failed_file_alert_with_its_rule() -> None:
    fields = fields_of("dlp_sharepoint_block")
    assert fields["event"]["code"] == "ComplianceDLPSharePoint"
    assert fields["event"]["kind"] == "alert"
    assert (fields["event"]["category"], fields["event"]["type"]) == (["file"], ["access"])
    assert fields["event"]["outcome"] == "failure"
    assert fields["event"]["severity"] == 4
    assert fields["rule"] == {
        "id": "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d", "name": "High volume of credit card numbers",
    }
    assert fields["file"] == {
        "name": "customers.csv", "inode": "9e8d7c6b-5a4f-4e3d-b2c1-a0f9e8d7c6b6",
        "owner": "megan.bowen@contoso.onmicrosoft.com",
    }
    assert fields["url"]["original"].endswith("/Documents/customers.csv")
    assert fields["user"]["id"] == "megan.bowen@contoso.onmicrosoft.com"
    assert fields["related"]["user"] == ["megan.bowen", "megan.bowen@contoso.onmicrosoft.com"]


def test_overridden_exchange_dlp_match_lists_every_rule_and_recipient() -> None:
    fields = fields_of("dlp_exchange_override")
    assert fields["event"]["code"] == "ComplianceDLPExchange"
    assert fields["event"]["outcome"] == "success"  # blocked, but the sender overrode it
    assert fields["event"]["severity"] == 3
    assert fields["rule"]["name"] == ["EU passport numbers", "EU national ids"]
    assert fields["rule"]["id"] == ["d0e1f2a3-b4c5-4d6e-8f7a-8b9c0d1e2f3a", "e1f2a3b4-c5d6-4e7f-9a8b-9c0d1e2f3a4b"]
    assert fields["source"]["user"] == {
        "email": "megan.bowen@contoso.onmicrosoft.com",
    }
    assert fields["destination"]["user"] == {"email": ["travel@fabrikam.com", "finance@contoso.onmicrosoft.com"]}


def test_dlp_block_without_an_exception_is_a_failure_and_an_undo_a_success() -> None:
    record = load("dlp_exchange_override")
    del record["ExceptionInfo"]
    assert normalize(record, TENANT)[0]["event"]["outcome"] == "failure"
    record["Operation"] = "DlpRuleUndo"
    assert normalize(record, TENANT)[0]["event"]["outcome"] == "success"


# --- Security & Compliance alerts ------------------------------------------------------------------------------------


def test_security_alert_maps_rule_severity_category_and_the_user_entity() -> None:
    fields = fields_of("security_alert")
    assert fields["event"]["code"] == "SecurityComplianceAlerts"
    assert fields["event"]["kind"] == "alert"
    assert fields["event"]["category"] == ["malware"]
    assert fields["event"]["severity"] == 1
    assert fields["rule"] == {
        "name": "Email messages containing malicious URL removed after delivery",
        "id": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        "category": "ThreatManagement",
        "ruleset": "User",
        "description": "Megan.Bowen@contoso.onmicrosoft.com",
        "reference": "https://security.microsoft.com/viewalertsv2?id=fa1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    }
    assert fields["user"]["id"] == "Megan.Bowen@contoso.onmicrosoft.com"
    assert fields["user"]["email"] == "Megan.Bowen@contoso.onmicrosoft.com"


# --- values ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("creation_time", "expected"), [
    ("2024-03-11T08:14:52", "2024-03-11T08:14:52"),
    ("2024-03-11T08:14:52Z", "2024-03-11T08:14:52"),
    ("2024-03-11T08:14:52.1234567Z", "2024-03-11T08:14:52.123"),
    ("2024-03-11T10:14:52+02:00", "2024-03-11T08:14:52"),
])
def test_creation_time_is_utc_whatever_its_format(creation_time: str, expected: str) -> None:
    record = load("aad_sts_logon_failed")
    record["CreationTime"] = creation_time
    assert normalize(record, TENANT)[1] == epoch(expected)


@pytest.mark.parametrize("creation_time", ["", "yesterday", 1710144892, None])
def test_unreadable_or_missing_creation_time_gives_no_timestamp(creation_time: Any) -> None:
    record = load("aad_sts_logon_failed")
    record["CreationTime"] = creation_time
    fields, timestamp = normalize(record, TENANT)
    assert timestamp is None
    assert fields["event"]["action"] == "UserLoginFailed"


@pytest.mark.parametrize(("status", "expected"), [
    ("Succeeded", "success"), ("Success", "success"), ("success", "success"), ("PartiallySucceeded", "success"),
    ("True", "success"), (True, "success"), ("Failed", "failure"), ("failed", "failure"), ("Failure", "failure"),
    ("False", "failure"), ("Pending", "unknown"), (None, None), ("", None),
])
def test_result_status_to_outcome(status: Any, expected: str | None) -> None:
    assert outcome(status) == expected


def test_unknown_record_type_becomes_its_number_as_text() -> None:
    record = load("aad_add_user")
    record["RecordType"] = 9999
    fields, _ = normalize(record, TENANT)
    assert fields["event"]["code"] == "9999"
    assert fields["event"]["action"] == "Add user."  # Filebeat's renaming is only for directory records
    assert (fields["event"]["category"], fields["event"]["type"]) == (["web"], ["info"])
    assert record_type_name("15") == "AzureActiveDirectoryStsLogon"
    assert record_type_name(None) is None
    assert record_type_name(True) is None


@pytest.mark.parametrize("client_ip", ["<null>", "null", "", "   "])
def test_placeholder_client_ip_falls_back_to_the_actor_address(client_ip: str) -> None:
    record = load("aad_sts_logon_failed")
    record["ClientIP"] = client_ip
    record["ActorIpAddress"] = "198.51.100.9"
    fields, _ = normalize(record, TENANT)
    assert fields["client"] == {"address": "198.51.100.9", "ip": "198.51.100.9"}


def test_missing_or_unparseable_client_address_gives_no_ip() -> None:
    record = load("aad_sts_logon_failed")
    del record["ClientIP"], record["ActorIpAddress"]
    fields, _ = normalize(record, TENANT)
    assert "client" not in fields and "source" not in fields and "network" not in fields
    assert "ip" not in fields["related"]

    record["ClientIP"] = "outlook.office365.com"
    fields, _ = normalize(record, TENANT)
    assert fields["client"] == {"address": "outlook.office365.com"}
    assert "source" not in fields


def test_without_a_tenant_name_the_organization_name_or_user_domain_names_the_host() -> None:
    fields = fields_of("exchange_admin_new_inbox_rule", tenant_name=None)
    assert fields["organization"]["name"] == "contoso.onmicrosoft.com"
    assert fields["host"]["name"] == "contoso.onmicrosoft.com"

    fields = fields_of("aad_sts_logon_failed", tenant_name=None)
    assert "name" not in fields["organization"]
    assert fields["host"]["name"] == "contoso.onmicrosoft.com"


def test_odd_records_do_not_raise() -> None:
    assert normalize([], TENANT) == ({}, None)  # type: ignore[arg-type]
    fields, timestamp = normalize({"RecordType": "x", "UserId": 42, "ClientIP": ["1.2.3.4"],
                                   "PolicyDetails": [None, {"Rules": "x"}], "Members": "x"}, None)
    assert timestamp is None
    assert fields["event"] == {"kind": "event", "code": "x", "category": ["web"], "type": ["info"]}
    assert fields["user"] == {"id": "42"}
    dlp, _ = normalize({"RecordType": 11, "PolicyDetails": [None, {"Rules": [None, {"Severity": 5}]}],
                        "SharePointMetaData": "x", "ExchangeMetaData": {"To": [None, 3]}}, None)
    assert dlp["event"]["outcome"] == "success"
    assert "rule" not in dlp
