"""dissect: Filebeat's documented examples, every key modifier, and what a failure does to the event."""

from __future__ import annotations

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section


def build_with_problems(options: dict) -> tuple[list, list[str]]:
    problems: list = []
    data = expand_dotted({"processors": [{"dissect": options}]})
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    return processors, [str(problem) for problem in problems]


def dissect(options: dict, fields: dict) -> Event:
    processors, problems = build_with_problems(options)
    assert problems == []
    event = Event(fields)
    result = processors[0](event)
    assert result is event
    return event


def test_filebeat_docs_example_with_integer_conversion_and_target_prefix():
    options = yaml.safe_load("""
      tokenizer: '"%{pid|integer} - %{name} - %{status}"'
      field: "message"
      target_prefix: "service"
    """)
    event = dissect(options, {"message": '"321 - App01 - WebServer is starting"'})
    assert event.fields["service"] == {"pid": 321, "name": "App01", "status": "WebServer is starting"}


def test_default_target_prefix_is_dissect_and_last_key_takes_the_rest():
    event = dissect({"tokenizer": "%{key1} %{key2}"}, {"message": "hello big world"})
    assert event.fields["dissect"] == {"key1": "hello", "key2": "big world"}
    assert event.fields["message"] == "hello big world"


def test_empty_target_prefix_writes_dotted_keys_at_the_root():
    event = dissect({"tokenizer": "%{source.ip}:%{source.port|long}", "target_prefix": ""},
                    {"message": "10.0.0.1:443"})
    assert event.fields["source"] == {"ip": "10.0.0.1", "port": 443}


def test_append_joins_with_a_space_in_ordinal_order():
    event = dissect({"tokenizer": "%{+ts/2} %{+ts/1} %{level}"}, {"message": "12:00:01 2024-01-02 INFO"})
    assert event.fields["dissect"] == {"ts": "2024-01-02 12:00:01", "level": "INFO"}
    event = dissect({"tokenizer": "%{+ts} %{+ts} %{+ts} %{msg}"}, {"message": "Mar 17 18:24:37 started"})
    assert event.fields["dissect"] == {"ts": "Mar 17 18:24:37", "msg": "started"}


def test_skip_fields_named_and_anonymous():
    event = dissect({"tokenizer": "%{} %{?ignored} %{kept}"}, {"message": "a b c"})
    assert event.fields["dissect"] == {"kept": "c"}


def test_pointer_and_indirect_make_a_key_from_a_value():
    event = dissect({"tokenizer": "%{*name} %{&name}"}, {"message": "user alice"})
    assert event.fields["dissect"] == {"user": "alice"}
    event = dissect({"tokenizer": "%{?name}=%{&name}"}, {"message": "color=blue"})
    assert event.fields["dissect"] == {"color": "blue"}


def test_padding_modifier_skips_repeated_delimiters():
    event = dissect({"tokenizer": "%{date->} %{level} %{msg}"}, {"message": "2024-01-02     INFO up"})
    assert event.fields["dissect"] == {"date": "2024-01-02", "level": "INFO", "msg": "up"}
    # ESA pads a one-digit day with a space: "Fri Apr  1 07:06:22 2022".
    event = dissect({"tokenizer": "%{dow} %{month->} %{day} %{time} %{year} %{level}: %{msg}"},
                    {"message": "Fri Apr  1 07:06:22 2022 Info: logged on"})
    assert event.fields["dissect"]["day"] == "1"
    assert event.fields["dissect"]["msg"] == "logged on"


def test_trailing_delimiter_is_required_and_text_after_it_ignored():
    event = dissect({"tokenizer": "|%{key1}|%{key2}|"}, {"message": "|a|b|rest"})
    assert event.fields["dissect"] == {"key1": "a", "key2": "b"}


@pytest.mark.parametrize(("mode", "expected"), [
    ("none", " a\t"), ("left", "a\t"), ("right", " a"), ("all", "a"),
])
def test_trim_values_with_trim_chars(mode, expected):
    event = dissect({"tokenizer": "|%{key}|", "trim_values": mode, "trim_chars": " \t"}, {"message": "| a\t|"})
    assert event.fields["dissect"]["key"] == expected


def test_no_match_flags_the_event_raises_and_writes_nothing():
    processors, _ = build_with_problems({"tokenizer": "%{a} - %{b}"})
    event = Event({"message": "no dash here"})
    with pytest.raises(ValueError, match="could not find delimiter: ` - `"):
        processors[0](event)
    assert event.fields["log"] == {"flags": ["dissect_parsing_error"]}
    assert "dissect" not in event.fields


def test_first_delimiter_must_start_the_string():
    processors, _ = build_with_problems({"tokenizer": "[%{a}]"})
    with pytest.raises(ValueError, match="beginning delimiter"):
        processors[0](Event({"message": "x [y]"}))


def test_ignore_failure_leaves_the_event_untouched():
    event = dissect({"tokenizer": "%{a} - %{b}", "ignore_failure": True}, {"message": "no dash"})
    assert event.fields == {"message": "no dash"}
    event = dissect({"tokenizer": "%{a} - %{b}", "ignore_failure": True}, {})
    assert event.fields == {}


def test_existing_key_is_a_failure_unless_overwrite_keys():
    processors, _ = build_with_problems({"tokenizer": "%{a} %{b}", "target_prefix": ""})
    event = Event({"message": "1 2", "a": "old"})
    with pytest.raises(ValueError, match="cannot override existing key with `a`"):
        processors[0](event)
    assert event.fields["a"] == "old" and "b" not in event.fields
    event = dissect({"tokenizer": "%{a} %{b}", "target_prefix": "", "overwrite_keys": True},
                    {"message": "1 2", "a": "old"})
    assert (event.fields["a"], event.fields["b"]) == ("1", "2")


def test_missing_and_non_string_fields_fail():
    processors, _ = build_with_problems({"tokenizer": "%{a}", "field": "payload"})
    with pytest.raises(ValueError, match="key not found"):
        processors[0](Event({"message": "x"}))
    with pytest.raises(ValueError, match="not a string"):
        processors[0](Event({"payload": 5}))


def test_failed_conversion_is_a_failure():
    processors, _ = build_with_problems({"tokenizer": "%{n|integer}"})
    with pytest.raises(ValueError, match="unable to convert value 'x1' to integer"):
        processors[0](Event({"message": "x1"}))


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "tokenizer"),
    ({"tokenizer": "no keys"}, "at least one %{key}"),
    ({"tokenizer": "%{a}%{b}"}, "not separated by a delimiter"),
    ({"tokenizer": "%{a|date}"}, "unknown conversion"),
    ({"tokenizer": "%{a}", "trim_values": "both"}, "trim_values"),
    ({"tokenizer": "%{a}", "target": "x"}, "target"),
])
def test_config_errors_name_the_key(options, problem):
    _, problems = build_with_problems(options)
    assert problems and problem in problems[0]
    assert "dissect" in problems[0]
