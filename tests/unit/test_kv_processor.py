"""The `kv` processor: the pair splitting real appliances need, Elastic's kv options, failures that never crash."""

from __future__ import annotations

import random

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.processors.kv import KeyValueParser
from forwarder.schema.section import Section


def build(text: str, expect_problems: bool = False):
    problems: list = []
    data = expand_dotted(yaml.safe_load(text))
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    if expect_problems:
        return [str(problem) for problem in problems]
    assert problems == []
    return processors[0]


def test_quoted_unquoted_with_spaces_and_empty_values():
    pairs = KeyValueParser().pairs('a=1 b="x y" c=Unknown (0x0000) d= e="" f=" LAN" g=a=b')
    assert pairs == [("a", "1"), ("b", "x y"), ("c", "Unknown (0x0000)"), ("d", ""), ("e", ""), ("f", " LAN"),
                     ("g", "a=b")]


def test_quoted_value_may_hold_spaces_and_key_equals_text():
    assert KeyValueParser().parse('message="User a=b failed to log in" status="Failed"') == {
        "message": "User a=b failed to log in", "status": "Failed"}


def test_missing_closing_quote_ends_at_the_next_pair_or_the_line_end():
    assert KeyValueParser().parse('a="unterminated b=2 c="no end here') == {
        "a": "unterminated", "b": "2", "c": "no end here"}


def test_a_quote_inside_a_quoted_value_keeps_the_rest_of_the_value():
    assert KeyValueParser().parse('msg="he said "hi" ok" n=1') == {"msg": 'he said "hi" ok', "n": "1"}


def test_text_without_pairs_gives_none_and_leading_text_is_skipped():
    parser = KeyValueParser()
    assert parser.pairs("no pairs at all") == []
    assert parser.pairs("") == []
    assert parser.pairs("header text k=v") == [("k", "v")]


def test_other_separators_are_regular_expressions():
    assert KeyValueParser("&", "=").parse("a=1&b=2&c=x y") == {"a": "1", "b": "2", "c": "x y"}
    assert KeyValueParser(",", ":").parse('a:1,b:2 3,c:"x,y",d:"open') == {"a": "1", "b": "2 3", "c": "x,y",
                                                                          "d": "open"}
    assert KeyValueParser(r"\|", "=").parse('a=1|b="x|y"') == {"a": "1", "b": "x|y"}


def test_processor_writes_pairs_at_the_root_by_default():
    kv = build("processors: [{kv: {}}]")
    event = kv(Event({"message": 'user="alice smith" src=10.0.0.1'}))
    assert event.fields == {"message": 'user="alice smith" src=10.0.0.1', "user": "alice smith", "src": "10.0.0.1"}


def test_processor_options_target_prefix_include_exclude_trim_brackets():
    kv = build("""
processors:
  - kv:
      field: raw.text
      target_field: parsed
      prefix: "fw."
      exclude_keys: [secret]
      trim_key: "_"
      trim_value: " "
      strip_brackets: true
""")
    event = kv(Event({"raw": {"text": '_zone_=" LAN " proto=(TCP) secret=x list=[1,2]'}}))
    assert event.fields["parsed"] == {"fw": {"zone": "LAN", "proto": "TCP", "list": "1,2"}}
    only = build("processors: [{kv: {include_keys: [a]}}]")
    assert only(Event({"message": "a=1 b=2"})).fields == {"message": "a=1 b=2", "a": "1"}


def test_repeated_keys_become_a_list():
    kv = build("processors: [{kv: {target_field: kv}}]")
    assert kv(Event({"message": "tag=a tag=b tag=c x=1"})).fields["kv"] == {"tag": ["a", "b", "c"], "x": "1"}


def test_failures_raise_unless_ignored_and_leave_the_event_unchanged():
    kv = build("processors: [{kv: {}}]")
    with pytest.raises(ValueError, match="missing"):
        kv(Event({"other": 1}))
    with pytest.raises(ValueError, match="no key=value pair"):
        kv(Event({"message": "plain text"}))
    with pytest.raises(ValueError, match="not a string"):
        kv(Event({"message": 42}))
    lenient = build("processors: [{kv: {ignore_missing: true, ignore_failure: true}}]")
    assert lenient(Event({"other": 1})).fields == {"other": 1}
    assert lenient(Event({"message": "plain text"})).fields == {"message": "plain text"}


def test_a_timestamp_key_sets_the_time_and_a_bad_one_changes_nothing():
    kv = build("processors: [{kv: {}}]")
    event = kv(Event({"message": "@timestamp=2024-05-01T10:00:00Z a=1"}, 0.0))
    assert event.timestamp == 1_714_557_600.0 and event.fields["a"] == "1"
    event = Event({"message": "a=1 @timestamp=yesterday"}, 0.0)
    with pytest.raises(ValueError):
        kv(event)
    assert event.fields == {"message": "a=1 @timestamp=yesterday"} and event.timestamp == 0.0


def test_bad_regular_expression_is_a_config_error_naming_the_key():
    problems = build('processors: [{kv: {field_split: "(unclosed"}}]', expect_problems=True)
    assert len(problems) == 1 and "processors.0.kv.field_split" in problems[0]


def test_random_and_half_quoted_text_never_crashes():
    parser = KeyValueParser()
    other = KeyValueParser(";", ":")
    alphabet = 'ab=" =\\\'()[]x\t'
    generator = random.Random(12)
    for _ in range(3000):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randrange(0, 60)))
        for key, value in parser.pairs(text) + other.pairs(text):
            assert isinstance(key, str) and isinstance(value, str) and key
