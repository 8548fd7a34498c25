"""The `o365_ecs` processor over the events the o365audit input emits: the fields, their order and the time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from forwarder.inputs.o365_poller import record_event
from forwarder.modules.o365_ecs import normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "o365"
TENANT = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
OTHER_TENANT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
NAMES = {TENANT: "contoso.onmicrosoft.com", OTHER_TENANT: "fabrikam.com"}
NOW = 1_700_000_000.25


def processor(**options: Any) -> Processor:
    """Built the way a `processors:` item naming it is built, through the registered `o365_ecs` entry point."""
    problems: list = []
    [built] = build_processors([Section({"o365_ecs": options}, "processors.0", "inputs.d/o365.yml", problems)])
    assert problems == []
    return built


def emitted(record: Any, tenant: str = TENANT) -> Event:
    return record_event(record, tenant, True, clock=lambda: NOW)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_the_processor_is_named_for_the_error_policy() -> None:
    assert processor().__name__ == "o365_ecs"


def test_the_message_comes_first_then_the_mapping_in_its_order_and_the_original_last() -> None:
    record = load("sharepoint_file_downloaded")
    event = processor(preserve_original_event=True, tenant_names=NAMES)(emitted(record))
    normalized, timestamp = normalize(record, NAMES[TENANT])
    normalized["event"]["original"] = orjson.dumps(record).decode()
    assert list(event.fields) == ["message", *normalized]
    assert list(event.fields["event"]) == [*normalized["event"]]
    assert event.fields == {"message": orjson.dumps(record).decode(), **normalized}
    assert event.timestamp == timestamp
    assert event.meta == {"_id": record["Id"]}


def test_the_tenant_is_named_from_the_tenant_polled_not_from_the_record() -> None:
    record = load("aad_sts_logon_success")
    mapping = processor(tenant_names=NAMES)
    assert mapping(emitted(record, TENANT)).fields["organization"]["name"] == "contoso.onmicrosoft.com"
    assert mapping(emitted(record, OTHER_TENANT)).fields["organization"]["name"] == "fabrikam.com"
    unnamed = processor()(emitted(record, TENANT)).fields["organization"]
    assert unnamed == {"id": record["OrganizationId"]}


def test_a_creation_time_only_the_input_reads_is_kept_without_an_error() -> None:
    record = {**load("exchange_item_send"), "CreationTime": 1710144892}
    event = processor()(emitted(record))
    assert event.timestamp == 1710144892.0
    assert "error" not in event.fields


def test_the_mapping_truncates_the_creation_time_to_milliseconds() -> None:
    record = {**load("exchange_item_send"), "CreationTime": "2024-03-11T08:14:52.7215374"}
    event = processor()(emitted(record))
    assert format_timestamp(event.timestamp) == "2024-03-11T08:14:52.721Z"
    assert "error" not in event.fields


def test_without_a_readable_creation_time_the_clock_is_used_and_the_error_follows_the_mapping() -> None:
    record = {key: value for key, value in load("exchange_item_send").items() if key != "CreationTime"}
    event = processor(preserve_original_event=True)(emitted(record))
    assert event.timestamp == NOW
    assert list(event.fields)[-1] == "error"
    assert event.fields["error"] == {"message": "the audit record has no readable CreationTime"}
    assert list(event.fields["event"])[-1] == "original"


def test_without_normalize_only_the_original_is_added() -> None:
    record = {key: value for key, value in load("exchange_item_send").items() if key != "CreationTime"}
    event = processor(normalize=False, preserve_original_event=True)(emitted(record))
    raw = orjson.dumps(record).decode()
    assert list(event.fields) == ["message", "error", "event"]
    assert event.fields["event"] == {"original": raw}


def test_what_is_not_an_audit_record_stays_the_input_parse_failure() -> None:
    event = processor(preserve_original_event=True)(emitted(["not", "an", "object"]))
    assert event.fields == {"message": '["not","an","object"]', "tags": ["_parse_failure"],
                            "error": {"message": "the audit record is not a JSON object"}}
    assert event.timestamp == NOW


def test_a_tenant_name_that_is_not_a_name_is_reported_against_its_key() -> None:
    problems: list = []
    build_processors([Section({"o365_ecs": {"tenant_names": {TENANT: ["a", "list"]}}}, "processors.0",
                              "inputs.d/o365.yml", problems)])
    assert [str(problem) for problem in problems] == [
        "inputs.d/o365.yml: processors.0.o365_ecs.tenant_names." + TENANT
        + ": expected the tenant's name, e.g. contoso.onmicrosoft.com"
    ]
