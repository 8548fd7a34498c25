"""Event Hubs message bodies → records: the shapes Azure services write, broken bodies, and the sanitizers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from forwarder.inputs.eventhub_decoder import (
    PARSE_FAILURE_TAG,
    Sanitizer,
    decode_body,
    parse_failure_fields,
    replace_all_sanitizer,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure"
NEW_LINES = Sanitizer("new_lines")
SINGLE_QUOTES = Sanitizer("single_quotes")


def test_diagnostic_settings_body_gives_one_record_per_element_in_order() -> None:
    body = (FIXTURES / "identity_protection.json").read_bytes()
    decoded = decode_body(body)
    assert decoded.shape == "records"
    assert [record["category"] for record in decoded.records] == ["UserRiskEvents", "RiskyUsers"]
    assert decoded.records == orjson.loads(body)["records"]
    assert (decoded.problem, decoded.raw, decoded.sanitized) == (None, None, False)


def test_bare_array_gives_one_record_per_element() -> None:
    decoded = decode_body(b'[{"category": "AuditEvent", "n": 1}, {"category": "AuditEvent", "n": 2}, "text"]')
    assert decoded.shape == "array"
    assert decoded.records == [{"category": "AuditEvent", "n": 1}, {"category": "AuditEvent", "n": 2}, "text"]


def test_single_object_is_one_record() -> None:
    decoded = decode_body(b'{"time": "2024-05-14T12:00:00Z", "category": "AppServiceHTTPLogs", "properties": {}}')
    assert decoded.shape == "object"
    assert decoded.records == [{"time": "2024-05-14T12:00:00Z", "category": "AppServiceHTTPLogs", "properties": {}}]


def test_object_whose_records_member_is_not_a_list_is_kept_whole() -> None:
    decoded = decode_body(b'{"records": "none today", "source": "probe"}')
    assert decoded.shape == "object"
    assert decoded.records == [{"records": "none today", "source": "probe"}]


@pytest.mark.parametrize(("body", "problem"), [
    (b"{}", "the body is an empty JSON object"),
    (b'{"records": []}', '"records" is an empty list'),
    (b"[]", "the body is an empty JSON array"),
    (b"   \n", "the body is empty"),
    (b"", "the body is empty"),
    (b'{"value": [1], "alerts": []}', 'an object of lists without "records" (keys: alerts, value)'),
])
def test_bodies_without_records_come_back_empty_with_the_reason(body: bytes, problem: str) -> None:
    decoded = decode_body(body)
    assert decoded.shape == "empty"
    assert decoded.records == []
    assert decoded.problem == problem


def test_invalid_json_without_sanitizers_is_one_raw_record_marked_as_a_parse_failure() -> None:
    body = b'{"records": [{"category": "AuditEvent", "properties": [ 227 B blob data ]}]}'
    decoded = decode_body(body)
    assert decoded.shape == "unparsable"
    assert decoded.records == []
    assert decoded.raw == body.decode()
    assert decoded.problem.startswith("not valid JSON (")
    fields = parse_failure_fields(decoded)
    assert fields["message"] == body.decode()
    assert fields["tags"] == [PARSE_FAILURE_TAG]
    assert fields["error"]["message"].startswith("cannot decode the Event Hubs message body: not valid JSON")


@pytest.mark.parametrize(("body", "kind"), [(b'"just text"', "str"), (b" 42 ", "int"), (b"null", "null")])
def test_json_that_is_neither_object_nor_array_is_one_raw_record(body: bytes, kind: str) -> None:
    decoded = decode_body(body)
    assert decoded.shape == "unparsable"
    assert decoded.raw == body.decode()
    assert decoded.problem == f"a JSON {kind}, not an object or an array"


def test_invalid_utf8_is_forwarded_raw_with_replacement_characters() -> None:
    decoded = decode_body(b'{"records": [{"identity": "Ren\xe9e"}]}')
    assert decoded.shape == "unparsable"
    assert decoded.raw == '{"records": [{"identity": "Ren\ufffde"}]}'


def test_a_leading_byte_order_mark_is_accepted() -> None:
    decoded = decode_body(b'\xef\xbb\xbf{"records": [{"category": "AuditLogs"}]}')
    assert decoded.shape == "records"
    assert decoded.records == [{"category": "AuditLogs"}]


def test_new_lines_sanitizer_repairs_raw_line_breaks_inside_strings() -> None:
    body = b'{"records": [{"category": "FunctionAppLogs", "properties": {"message": "line one\r\nline two"}}]}'
    assert decode_body(body).shape == "unparsable"
    decoded = decode_body(body, [NEW_LINES])
    assert decoded.shape == "records"
    assert decoded.sanitized is True
    assert decoded.records[0]["properties"]["message"] == "line oneline two"


def test_single_quotes_sanitizer_turns_single_quoted_json_into_json() -> None:
    body = b"{'records': [{'category': 'AuditEvent', 'note': \"it's fine\", 'n': 1}]}"
    decoded = decode_body(body, [SINGLE_QUOTES])
    assert decoded.shape == "records"
    assert decoded.records == [{"category": "AuditEvent", "note": "it's fine", "n": 1}]


def test_replace_all_sanitizer_takes_go_style_group_references() -> None:
    body = b'{"records": [{"category": "AuditEvent", "properties": [ 227 B blob data ]}]}'
    sanitizer = replace_all_sanitizer(r"\[\s*(\d+) B blob data\s*\]", '"$1 bytes of blob data"')
    decoded = decode_body(body, [sanitizer])
    assert decoded.shape == "records"
    assert decoded.records[0]["properties"] == "227 bytes of blob data"


def test_replace_all_sanitizer_takes_python_group_references() -> None:
    sanitizer = replace_all_sanitizer(r"'(\w+)'", r'"\g<1>"')
    decoded = decode_body(b"[{'category': 'AuditEvent'}]", [sanitizer])
    assert decoded.records == [{"category": "AuditEvent"}]


def test_sanitizers_run_in_order() -> None:
    body = b"{'records': [{'message': 'a\nb'}]}"
    decoded = decode_body(body, [SINGLE_QUOTES, NEW_LINES])
    assert decoded.records == [{"message": "ab"}]


def test_sanitizers_never_touch_a_valid_body() -> None:
    body = (FIXTURES / "signinlogs_noninteractive.json").read_bytes()
    rewrite_names = replace_all_sanitizer("Nikhita", "REDACTED")
    decoded = decode_body(body, [rewrite_names, NEW_LINES, SINGLE_QUOTES])
    assert decoded.sanitized is False
    assert decoded.records[0]["identity"] == "Nikhita Sethi"


def test_a_body_still_invalid_after_the_sanitizers_is_forwarded_raw() -> None:
    body = b'{"records": [{"category": "AuditEvent", "oops": }]}'
    decoded = decode_body(body, [NEW_LINES, SINGLE_QUOTES])
    assert decoded.shape == "unparsable"
    assert decoded.sanitized is True
    assert decoded.raw == body.decode()
    assert "even after the sanitizers" in decoded.problem


def test_a_sanitized_body_that_holds_no_records_says_so() -> None:
    decoded = decode_body(b"{'records': []}", [SINGLE_QUOTES])
    assert (decoded.shape, decoded.sanitized, decoded.problem) == ("empty", True, '"records" is an empty list')
