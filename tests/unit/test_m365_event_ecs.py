"""The Advanced Hunting mapping on its own: families, decoding, fall-backs, and odd input that must not raise."""

from __future__ import annotations

from forwarder.modules.azure_ecs import normalize
from forwarder.modules.azure_routing import CategoryRouter, fileset_for_category, module_and_dataset
from forwarder.modules.microsoft_m365_event_ecs import normalize_advanced_hunting, snake_case


def record(table: str, row: dict, **envelope) -> dict:
    return {"category": f"AdvancedHunting-{table}", "time": "2024-05-14T09:03:00Z", "properties": row, **envelope}


def test_categories_route_to_the_microsoft_fileset_in_any_case() -> None:
    assert fileset_for_category("AdvancedHunting-DeviceEvents") == "m365_defender_event"
    assert fileset_for_category("advancedhunting-anything") == "m365_defender_event"
    assert fileset_for_category("AdvancedHuntingX") == "platformlogs"
    assert module_and_dataset("m365_defender_event") == ("microsoft", "m365_defender.event")
    assert module_and_dataset("signinlogs") == ("azure", "azure.signinlogs")
    router = CategoryRouter(["signinlogs"])
    route = router.route({"category": "AdvancedHunting-EmailEvents"})
    assert route.fileset == "m365_defender_event" and not route.expected and route.first_unexpected
    assert router.unexpected == {"AdvancedHunting-EmailEvents": 1}


def test_the_azure_normalizer_hands_advanced_hunting_records_to_their_mapping() -> None:
    row = {"Timestamp": "2024-05-14T09:02:17.5Z", "DeviceName": "pc1"}
    assert normalize(record("DeviceInfo", row), "m365_defender_event") == normalize_advanced_hunting(
        record("DeviceInfo", row))


def test_snake_case_names() -> None:
    assert snake_case("InitiatingProcessSHA256") == "initiating_process_sha256"
    assert snake_case("RemoteIP") == "remote_ip"
    assert snake_case("SenderIPv4") == "sender_ipv4"
    assert snake_case("DeviceId") == "device_id"
    assert snake_case("AccountUpn") == "account_upn"


def test_additional_fields_decoded_from_text_or_kept_when_not_json() -> None:
    decoded = normalize_advanced_hunting(record("DeviceEvents", {"AdditionalFields": '{"Command": "x", "N": 2}'}))
    assert decoded.fields["m365_defender"]["event"]["additional_fields"] == {"Command": "x", "N": 2}
    broken = normalize_advanced_hunting(record("DeviceEvents", {"AdditionalFields": "{not json"}))
    assert broken.fields["m365_defender"]["event"]["additional_fields"] == "{not json"


def test_timestamp_from_the_row_else_the_record_time() -> None:
    assert normalize_advanced_hunting(record("X", {"Timestamp": "2024-05-14T09:02:17.1239Z"})).timestamp == \
        1715677337.123
    assert normalize_advanced_hunting(record("X", {})).timestamp == 1715677380.0


def test_email_attachment_and_url_click() -> None:
    attachment = normalize_advanced_hunting(record("EmailAttachmentInfo", {
        "FileName": "invoice.pdf", "FileType": "pdf", "SHA256": "abc", "SenderFromAddress": "a@b.example",
        "RecipientEmailAddress": "c@d.example"})).fields
    assert attachment["email"]["attachments"] == [{"file": {"name": "invoice.pdf", "mime_type": "pdf",
                                                            "hash": {"sha256": "abc"}}}]
    assert attachment["event"]["category"] == ["email"]
    click = normalize_advanced_hunting(record("UrlClickEvents", {
        "Url": "https://x.example/a", "AccountUpn": "c@d.example", "IPAddress": "192.0.2.1",
        "ActionType": "ClickAllowed"})).fields
    assert click["url"]["original"] == "https://x.example/a" and click["user"]["email"] == "c@d.example"
    assert click["source"]["ip"] == "192.0.2.1" and click["event"]["action"] == "clickallowed"


def test_alert_tables_are_alerts() -> None:
    fields = normalize_advanced_hunting(record("AlertInfo", {
        "AlertId": "da1", "Title": "Suspicious", "Severity": "High", "Category": "Execution",
        "ServiceSource": "Microsoft Defender for Endpoint"})).fields
    assert fields["event"] == {"kind": "alert", "id": "da1", "provider": "Microsoft Defender for Endpoint",
                               "severity": 4}
    assert fields["rule"]["name"] == "Suspicious" and fields["threat"]["tactic"]["name"] == ["Execution"]


def test_cloud_app_events_and_device_logons() -> None:
    cloud = normalize_advanced_hunting(record("CloudAppEvents", {
        "ActionType": "FileDownloaded", "AccountObjectId": "u-1", "AccountDisplayName": "Bob",
        "IPAddress": "203.0.113.5", "CountryCode": "NL", "UserAgent": "Mozilla/5.0"})).fields
    assert cloud["user"]["id"] == "u-1" and cloud["source"]["ip"] == "203.0.113.5"
    assert cloud["source"]["geo"]["country_iso_code"] == "NL" and cloud["user_agent"]["original"] == "Mozilla/5.0"
    logon = normalize_advanced_hunting(record("DeviceLogonEvents", {
        "DeviceName": "pc1", "ActionType": "LogonFailed", "AccountName": "bob", "RemoteIP": "192.0.2.9",
        "RemotePort": "3389"})).fields
    assert logon["event"]["category"] == ["authentication"]
    assert logon["source"] == {"ip": "192.0.2.9", "port": 3389} and "destination" not in logon


def test_odd_records_do_not_raise_and_write_no_nulls() -> None:
    assert normalize_advanced_hunting("not a record").fields == {"cloud": {"provider": "azure"}}
    odd = normalize_advanced_hunting({"category": "AdvancedHunting-DeviceFileEvents", "properties": "text",
                                      "Extra": None})
    assert odd.timestamp is None and odd.fields["m365_defender"]["event"]["table"] == "DeviceFileEvents"
    nulls = normalize_advanced_hunting(record("DeviceFileEvents", {"FileName": None, "SHA1": "", "ProcessId": "x"}))
    assert "file" not in nulls.fields and "process" not in nulls.fields
    assert "file_name" not in nulls.fields["m365_defender"]["event"]


def test_columns_mapped_onto_ecs_are_not_repeated_and_the_rest_are_kept() -> None:
    fields = normalize_advanced_hunting(record("IdentityLogonEvents", {
        "AccountObjectId": "u-1", "AccountSid": "S-1-5-21-1", "IPAddress": "192.0.2.1", "LogonType": "Interactive",
        "Timestamp": "2024-05-14T09:02:17Z"})).fields
    own = fields["m365_defender"]["event"]
    assert fields["user"]["id"] == "u-1" and "account_object_id" not in own and "ip_address" not in own
    assert own["account_sid"] == "S-1-5-21-1"  # user.id already came from the object id: kept here
    assert own["logon_type"] == "Interactive" and own["timestamp"] == "2024-05-14T09:02:17Z"
