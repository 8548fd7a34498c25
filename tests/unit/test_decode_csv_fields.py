"""decode_csv_fields: Filebeat's documented example, quoting, separators and the failure rules."""

from __future__ import annotations

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section


def build_with_problems(options: dict) -> tuple[list, list[str]]:
    problems: list = []
    data = expand_dotted({"processors": [{"decode_csv_fields": options}]})
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    return processors, [str(problem) for problem in problems]


def build(options: dict):
    processors, problems = build_with_problems(options)
    assert problems == []
    return processors[0]


def test_filebeat_docs_example():
    options = yaml.safe_load("""
      fields:
        message: decoded.csv
      separator: ","
      ignore_missing: false
      overwrite_keys: true
      trim_leading_space: false
      fail_on_error: true
    """)
    event = build(options)(Event({"message": 'a,"b, c","say ""hi""",'}))
    assert event.fields["decoded"]["csv"] == ["a", "b, c", 'say "hi"', ""]
    assert event.fields["message"] == 'a,"b, c","say ""hi""",'


def test_separator_and_trim_leading_space():
    processor = build({"fields": {"message": "csv"}, "separator": ";", "trim_leading_space": True})
    assert processor(Event({"message": "x;  y; z"})).fields["csv"] == ["x", "y", "z"]
    processor = build({"fields": {"message": "csv"}, "separator": "\t"})
    assert processor(Event({"message": "x\t y"})).fields["csv"] == ["x", " y"]


def test_quoted_newline_is_one_record_but_two_records_fail():
    processor = build({"fields": {"message": "csv"}})
    assert processor(Event({"message": '"a\nb",c'})).fields["csv"] == ["a\nb", "c"]
    with pytest.raises(ValueError, match="2 records"):
        processor(Event({"message": "a,b\nc,d"}))


def test_existing_target_fails_and_rolls_back_everything():
    processor = build({"fields": {"first": "out.first", "second": "out.second"}})
    event = Event({"first": "1,2", "second": "3", "out": {"second": "kept"}})
    with pytest.raises(ValueError, match=r"target field out\.second already has a value"):
        processor(event)
    assert event.fields["out"] == {"second": "kept"}


def test_in_place_with_overwrite_keys():
    processor = build({"fields": {"message": "message"}, "overwrite_keys": True})
    assert processor(Event({"message": "1,2"})).fields["message"] == ["1", "2"]


def test_fail_on_error_false_skips_only_the_failing_field():
    processor = build({"fields": {"missing": "a", "message": "b", "number": "c"}, "fail_on_error": False})
    event = processor(Event({"message": "x,y", "number": 5}))
    assert event.fields["b"] == ["x", "y"]
    assert "a" not in event.fields and "c" not in event.fields


def test_missing_field_fails_unless_ignore_missing():
    with pytest.raises(ValueError, match="could not fetch value for field missing"):
        build({"fields": {"missing": "out"}})(Event({}))
    assert build({"fields": {"missing": "out"}, "ignore_missing": True})(Event({})).fields == {}


def test_unterminated_quote_fails():
    with pytest.raises(ValueError, match="error decoding CSV"):
        build({"fields": {"message": "out"}})(Event({"message": '"abc'}))


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "fields"),
    ({"fields": {"message": "out"}, "separator": ";;"}, "separator"),
    ({"fields": {"message": ""}}, "fields.message"),
])
def test_config_errors(options, problem):
    problems = build_with_problems(options)[1]
    assert problems and problem in problems[0]
