"""ndjson and multiline parsers of the filestream input, and their config."""

from __future__ import annotations

import json
import re

import pytest

from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import build_chain, parse_parsers
from forwarder.inputs.multiline_parser import MultilineConfig
from forwarder.inputs.ndjson_parser import PARSE_FAILURE_TAG, NdjsonConfig
from forwarder.schema.section import Section


def lines(*texts: str, start: int = 0) -> list[Message]:
    """Messages as the reader hands them over: byte ranges that follow each other."""
    result, offset = [], start
    for text in texts:
        size = len(text.encode())
        result.append(Message(text, offset, offset + size + 1, size))
        offset += size + 1
    return result


def run(configs, texts, max_bytes=10 * 1024 * 1024, now=0.0) -> list[Message]:
    chain = build_chain(configs, max_bytes)
    out = []
    for message in lines(*texts):
        out.extend(chain.feed(message, now))
    return out


def parse(parsers) -> tuple[list, list[str]]:
    problems = []
    configs = parse_parsers(Section({"parsers": parsers}, "", "inputs.yml", problems))
    return configs, [str(p) for p in problems]


# ----- multiline -------------------------------------------------------------------


def test_pattern_negate_after_joins_pretty_printed_json_objects():
    objects = [{"metadata": {"offset": n, "eventType": "UserActivityAuditEvent"}, "event": {"UserId": f"u{n}"}}
               for n in range(3)]
    texts = [line for obj in objects for line in json.dumps(obj, indent=4).splitlines()]
    config = MultilineConfig(pattern=re.compile("^{"), negate=True, match="after", timeout=5.0)
    chain = build_chain([config], 10 * 1024 * 1024)
    out = []
    for message in lines(*texts):
        out.extend(chain.feed(message, now=1.0))
    assert [json.loads(m.content) for m in out] == objects[:2], "an object ends when the next one starts"
    assert chain.deadline() == 6.0
    assert chain.expire(5.9) == []
    last = chain.expire(6.0)
    assert [json.loads(m.content) for m in last] == objects[2:], "the last object is sent when the timeout passes"
    everything = out + last
    assert [m.flags for m in everything] == [["multiline"]] * 3
    assert everything[0].offset == 0
    assert everything[1].offset == everything[0].end, "a record starts where the previous one ended"
    assert everything[2].end == sum(len(t.encode()) + 1 for t in texts), "the cursor ends after the last line"


def test_pattern_after_without_negate_appends_matching_lines_to_the_previous():
    config = MultilineConfig(pattern=re.compile(r"^\s"), match="after")
    out = run([config], ["Exception in main", "  at a()", "  at b()", "next line", "third"])
    chain_rest = [m.content for m in out]
    assert chain_rest == ["Exception in main\n  at a()\n  at b()", "next line"]


def test_pattern_before_joins_lines_ending_in_a_backslash_with_the_next():
    config = MultilineConfig(pattern=re.compile(r"\\$"), match="before")
    chain = build_chain([config], 1024)
    out = []
    for message in lines("first \\", "continued \\", "done", "alone", "x"):
        out.extend(chain.feed(message, 0.0))
    assert [m.content for m in out] == ["first \\\ncontinued \\\ndone", "alone"]


def test_flush_pattern_ends_the_record_with_the_matching_line():
    config = MultilineConfig(pattern=re.compile("^START"), negate=True, match="after", flush_pattern=re.compile("^END"))
    out = run([config], ["START 1", "a", "END", "stray", "START 2", "b"])
    assert [m.content for m in out] == ["START 1\na\nEND", "stray"]


def test_count_joins_a_fixed_number_of_lines_even_beyond_max_lines():
    config = MultilineConfig(type="count", count_lines=3, max_lines=2)
    out = run([config], ["a", "b", "c", "d", "e", "f", "g"])
    assert [m.content for m in out] == ["a\nb", "d\ne"]
    assert all("truncated" in m.flags for m in out), "lines over max_lines are dropped and the record says so"


def test_while_pattern_joins_consecutive_matching_lines_and_passes_others_alone():
    config = MultilineConfig(type="while_pattern", pattern=re.compile(r"^\+"))
    out = run([config], ["plain", "+a", "+b", "other", "+c"])
    assert [m.content for m in out] == ["plain", "+a\n+b", "other"]


def test_max_lines_and_max_bytes_truncate_but_the_cursor_covers_every_line():
    config = MultilineConfig(pattern=re.compile("^#"), negate=True, match="after", max_lines=3)
    chain = build_chain([config], 1024)
    texts = ["# head", "1", "2", "3", "4", "# next"]
    out = []
    for message in lines(*texts):
        out.extend(chain.feed(message, 0.0))
    assert out[0].content == "# head\n1\n2"
    assert out[0].flags == ["truncated", "multiline"]
    assert out[0].end == sum(len(t) + 1 for t in texts[:5])

    chain = build_chain([MultilineConfig(pattern=re.compile("^#"), negate=True, match="after")], 10)
    out = []
    for message in lines("#123456", "abcdef", "#"):
        out.extend(chain.feed(message, 0.0))
    assert out[0].content == "#123456\nab", "content is cut at max bytes, separator included"
    assert "truncated" in out[0].flags
    cut = build_chain([MultilineConfig(type="count", count_lines=2)], 4)
    assert cut.feed(lines("ab", "éé")[0], 0.0) == []
    assert cut.feed(lines("ab", "éé")[1], 0.0)[0].content == "ab\n", "a character is never split"


def test_skip_newline_joins_without_separator():
    config = MultilineConfig(type="count", count_lines=2, skip_newline=True)
    assert [m.content for m in run([config], ["ab", "cd"])] == ["abcd"]


def test_flush_hands_over_a_pending_record():
    chain = build_chain([MultilineConfig(pattern=re.compile("^x"), negate=True, match="after", timeout=0)], 100)
    assert chain.feed(lines("x1")[0], 0.0) == []
    assert chain.deadline() is None, "timeout 0 waits for the next record"
    assert [m.content for m in chain.flush(0.0)] == ["x1"]
    assert chain.flush(0.0) == []


# ----- ndjson ----------------------------------------------------------------------


def test_ndjson_under_root_with_a_bad_line_forwarded_raw_with_its_error():
    out = run([NdjsonConfig()], ['{"user": "alice", "action": "login"}', "not json {", "[1, 2]"])
    good, bad, array = out
    assert good.fields == {"user": "alice", "action": "login"}
    assert good.content == "", "without message_key the decoded keys replace the line"
    assert bad.content == "not json {"
    assert bad.fields["error"]["type"] == "json"
    assert bad.fields["error"]["message"].startswith("Error decoding JSON")
    assert bad.tags == [PARSE_FAILURE_TAG]
    assert array.content == "[1, 2]" and "JSON object" in array.fields["error"]["message"]


def test_ndjson_add_error_key_false_still_tags_the_raw_line():
    (bad,) = run([NdjsonConfig(add_error_key=False)], ["{oops"])
    assert bad.content == "{oops" and "error" not in bad.fields and bad.tags == [PARSE_FAILURE_TAG]


def test_ndjson_target_message_key_and_document_id():
    config = NdjsonConfig(target="json", message_key="msg", document_id="meta.id")
    (message,) = run([config], ['{"msg": "hello", "meta": {"id": "abc", "x": 1}, "n": 5}'])
    assert message.content == "hello"
    assert message.fields == {"json": {"msg": "hello", "meta": {"x": 1}, "n": 5}}
    assert message.meta == {"_id": "abc"}
    (missing,) = run([config], ['{"other": 1}'])
    assert missing.fields["error"]["message"] == "Key 'msg' not found"
    (wrong,) = run([config], ['{"msg": 3}'])
    assert wrong.fields["error"]["message"] == "Value of key 'msg' is not a string"


def test_ndjson_overwrite_keys_sets_timestamp_metadata_and_type():
    config = NdjsonConfig(overwrite_keys=True)
    (message,) = run([config], [json.dumps({
        "@timestamp": "2024-05-01T10:00:00.000Z", "@metadata": {"pipeline": "p"}, "type": "audit", "a": {"b": 1},
    })])
    assert message.timestamp == 1714557600.0
    assert message.meta == {"pipeline": "p"}
    assert message.fields == {"type": "audit", "a": {"b": 1}}
    (bad_stamp,) = run([config], ['{"@timestamp": "yesterday", "b": 1}'])
    assert bad_stamp.timestamp is None
    assert bad_stamp.fields == {"b": 1, "error": {"message": "@timestamp not overwritten (parse error on yesterday)",
                                                  "type": "json"}}
    (bad_type,) = run([config], ['{"type": "_x"}'])
    assert bad_type.fields == {"error": {"message": "type not overwritten (invalid value [_x])", "type": "json"}}


def test_ndjson_without_overwrite_keeps_existing_keys_and_drops_special_ones():
    chain = build_chain([NdjsonConfig()], 1024)
    line = Message('{"a": 1, "b": 2, "@timestamp": "2024-01-01T00:00:00Z"}', 0, 10, 9, fields={"a": 0})
    (message,) = chain.feed(line, 0.0)
    assert message.fields == {"a": 0, "b": 2}
    assert message.timestamp is None


def test_ndjson_expand_keys():
    (message,) = run([NdjsonConfig(expand_keys=True)], ['{"a.b": 1, "a.c": {"d.e": 2}, "x": 3}'])
    assert message.fields == {"a": {"b": 1, "c": {"d": {"e": 2}}}, "x": 3}
    (conflict,) = run([NdjsonConfig(expand_keys=True)], ['{"a": 1, "a.b": 2}'])
    assert "cannot expand" in conflict.fields["error"]["message"]


def test_ndjson_then_multiline_joins_the_decoded_messages():
    configs = [NdjsonConfig(message_key="log"), MultilineConfig(pattern=re.compile(r"^\s"), match="after")]
    out = run(configs, ['{"log": "Traceback"}', '{"log": "  File x"}', '{"log": "next"}', '{"log": "z"}'])
    assert [m.content for m in out] == ["Traceback\n  File x", "next"]
    assert out[0].end == out[1].offset


# ----- config ----------------------------------------------------------------------


def test_parser_config_is_read_with_filebeat_names():
    configs, problems = parse([
        {"ndjson": {"target": "", "add_error_key": True, "message_key": "msg", "overwrite_keys": True}},
        {"multiline": {"type": "pattern", "pattern": "^{", "negate": True, "match": "after", "max_lines": 5000,
                       "timeout": "10s"}},
        {"multiline": {"type": "count", "count_lines": 3}},
    ])
    assert problems == []
    ndjson, pattern, count = configs
    assert ndjson == NdjsonConfig(message_key="msg", overwrite_keys=True)
    assert pattern.pattern.pattern == "^{" and pattern.negate and pattern.max_lines == 5000 and pattern.timeout == 10
    assert count.type == "count" and count.count_lines == 3


@pytest.mark.parametrize("parsers, expected", [
    ([{"syslog": {}}], "inputs.yml: parsers.0.syslog: unknown parser (supported: ndjson, multiline, json_objects)"),
    ([{"ndjson": {}, "multiline": {}}], "inputs.yml: parsers.0: each parser must be a mapping with exactly one key"),
    ([{"multiline": {"pattern": "(", "match": "after"}}], "inputs.yml: parsers.0.multiline.pattern: invalid regular"),
    ([{"multiline": {"pattern": "^x"}}], "inputs.yml: parsers.0.multiline.match: is required when type is pattern"),
    ([{"multiline": {"match": "after"}}], "inputs.yml: parsers.0.multiline.pattern: is required when type is pattern"),
    ([{"multiline": {"type": "count"}}], "inputs.yml: parsers.0.multiline.count_lines: is required"),
    ([{"multiline": {"type": "lines"}}], "inputs.yml: parsers.0.multiline.type: must be one of"),
    ([{"multiline": {"type": "count", "count_lines": 2, "timout": "1s"}}],
     "inputs.yml: parsers.0.multiline.timout: unknown setting (did you mean 'parsers.0.multiline.timeout'?)"),
    ([{"ndjson": {"traget": "x"}}], "inputs.yml: parsers.0.ndjson.traget: unknown setting"),
    (["ndjson"], "inputs.yml: parsers.0: expected a mapping, got str"),
])
def test_parser_config_errors_name_the_key(parsers, expected):
    _, problems = parse(parsers)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems
