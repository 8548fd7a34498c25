"""The `json_objects` parser: pretty-printed JSON objects framed by the decoder, read through the real file reader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forwarder.inputs.file_reader import FilePosition, FileReader, file_identity
from forwarder.inputs.json_objects_parser import INCOMPLETE_REASON, TRUNCATED_REASON, brackets
from forwarder.inputs.line_message import TRUNCATED_FLAG, Message
from forwarder.inputs.line_parsers import ParserChain, build_chain, parse_parsers
from forwarder.inputs.ndjson_parser import PARSE_FAILURE_TAG
from forwarder.schema.section import Section

MAX_BYTES = 10 * 1024 * 1024


def event(offset: int, **extra: object) -> dict:
    return {"metadata": {"customerIDString": "abc123", "offset": offset, "eventType": "UserActivityAuditEvent",
                         "eventCreationTime": 1686845212400 + offset, "version": "1.0"},
            "event": {"UserId": f"user{offset}", "OperationName": "detection_update", "Note": "braces {[ in a string",
                      "AuditKeyValues": [{"Key": "detection_id", "ValueString": f"ldt:{offset}"}], **extra}}


def pretty(obj: dict) -> bytes:
    return (json.dumps(obj, indent=4) + "\n").encode()


def chain_for(options: dict | None = None, max_bytes: int = MAX_BYTES) -> ParserChain:
    problems: list = []
    configs = parse_parsers(Section({"parsers": [{"json_objects": options or {}}]}, "", "inputs.yml", problems))
    assert problems == []
    return build_chain(configs, max_bytes)


class Follower:
    """A real FileReader on a real file, feeding one parser chain, as the filestream input does."""

    def __init__(self, path: Path, chain: ParserChain, offset: int = 0, max_line_bytes: int = MAX_BYTES) -> None:
        fd = os.open(path, os.O_RDONLY)
        self.reader = FileReader(fd, FilePosition(offset=offset), max_line_bytes)
        self.chain = chain
        self.identity = file_identity(os.fstat(fd))

    def read(self) -> list[Message]:
        out = []
        for line in self.reader.read_lines(1 << 20):
            out.extend(self.chain.feed(line, 0.0))
        return out

    def close(self) -> list[Message]:
        out = self.chain.flush(0.0)
        self.reader.close()
        return out


def decoded(records: list[Message], target: str = "crowdstrike") -> list[dict]:
    return [r.fields[target] for r in records if PARSE_FAILURE_TAG not in r.tags]


def test_objects_split_across_many_writes_come_out_whole_with_cursors_on_object_boundaries(tmp_path):
    objects = [event(n) for n in range(5)]
    data = b"".join(pretty(obj) for obj in objects)
    path = tmp_path / "output"
    path.write_bytes(b"")
    follower = Follower(path, chain_for({"target": "crowdstrike"}))
    records = []
    # The connector writes an object in several pieces: cut the stream every 37 bytes, mid-line and mid-string.
    with path.open("ab") as out:
        for start in range(0, len(data), 37):
            out.write(data[start:start + 37])
            out.flush()
            records.extend(follower.read())
    assert decoded(records) == objects
    boundaries = {0, *(len(b"".join(pretty(o) for o in objects[:n + 1])) for n in range(5))}
    assert all(r.offset in boundaries and r.end in boundaries for r in records)
    assert [json.loads(data[r.offset:r.end]) for r in records] == objects
    assert follower.close() == []


def test_a_restart_from_any_published_cursor_reads_exactly_the_objects_after_it(tmp_path):
    objects = [event(n) for n in range(4)]
    path = tmp_path / "output"
    path.write_bytes(b"".join(pretty(obj) for obj in objects))
    first = Follower(path, chain_for({"target": "crowdstrike"})).read()
    for index, record in enumerate(first):
        resumed = Follower(path, chain_for({"target": "crowdstrike"}), offset=record.end).read()
        assert decoded(resumed) == objects[index + 1:]
        assert not any(PARSE_FAILURE_TAG in r.tags for r in resumed)


def test_a_partial_object_at_the_end_of_the_file_waits_for_the_rest(tmp_path):
    path = tmp_path / "output"
    whole = pretty(event(1))
    path.write_bytes(pretty(event(0)) + whole[:60])
    follower = Follower(path, chain_for({"target": "crowdstrike"}))
    assert decoded(follower.read()) == [event(0)]
    assert follower.read() == []
    assert follower.chain.deadline() is None, "no timeout cuts the object while the file stays open"
    with path.open("ab") as out:
        out.write(whole[60:])
    assert decoded(follower.read()) == [event(1)]


def test_a_partial_object_still_open_when_the_file_is_closed_goes_out_raw(tmp_path):
    path = tmp_path / "output"
    cut = pretty(event(0))[:80]
    path.write_bytes(cut)
    follower = Follower(path, chain_for({"target": "crowdstrike"}))
    assert follower.read() == []
    [record] = follower.close()
    assert record.tags == [PARSE_FAILURE_TAG]
    assert record.fields["error"]["message"] == INCOMPLETE_REASON
    assert record.content == cut[:cut.rindex(b"\n")].decode(), "the raw text of the complete lines read"


@pytest.mark.parametrize("cut_at", ["line end", "mid line", "mid indent", "after comma", "in an array",
                                    "after an array element", "after a colon"])
def test_a_truncated_object_followed_by_a_new_one_is_forwarded_raw_and_the_next_objects_still_decode(tmp_path, cut_at):
    broken = pretty(event(1))
    key = broken.index(b'"eventType"')
    broken = {"line end": broken[:key - 8], "mid line": broken[:broken.index(b"abc1")], "mid indent": broken[:key - 3],
              "after comma": broken[:key - 9], "in an array": broken[:broken.index(b'"AuditKeyValues": [') + 28],
              "after an array element": broken[:broken.index(b"}\n        ]") + 2] + b"            ",
              "after a colon": broken[:broken.index(b'"offset": ') + 10]}[cut_at]
    data = pretty(event(0)) + broken + pretty(event(2)) + pretty(event(3))
    path = tmp_path / "output"
    path.write_bytes(data)
    records = Follower(path, chain_for({"target": "crowdstrike"})).read()
    assert decoded(records) == [event(0), event(2), event(3)]
    [failure] = [r for r in records if PARSE_FAILURE_TAG in r.tags]
    assert failure.fields["error"]["message"] == TRUNCATED_REASON
    assert data[failure.offset:failure.end].rstrip() == broken.rstrip(), "the cut object, up to the next one"
    assert failure.content == broken.decode().rstrip()
    resumed = Follower(path, chain_for({"target": "crowdstrike"}), offset=failure.end).read()
    assert decoded(resumed) == [event(2), event(3)], "the cursor after the broken object is where the next begins"


def test_garbage_between_objects_is_forwarded_line_by_line_and_never_stops_the_objects(tmp_path):
    data = (b"connector starting\n" + pretty(event(0)) + b"\n   \n" + b"}]]}\n" + b"not json at all "
            + pretty(event(1)) + b'{"a": 1,}\n' + pretty(event(2)))
    path = tmp_path / "output"
    path.write_bytes(data)
    records = Follower(path, chain_for({"target": "crowdstrike"})).read()
    assert decoded(records) == [event(0), event(1), event(2)]
    failures = [(r.content, r.fields["error"]["message"]) for r in records if PARSE_FAILURE_TAG in r.tags]
    assert [content for content, _ in failures] == ["connector starting", "}]]}", "not json at all ", '{"a": 1,}']
    assert failures[0][1] == "not JSON: text outside any JSON object"
    assert failures[3][1].startswith("Error decoding JSON: ")


def test_compact_objects_on_one_line_are_split_exactly(tmp_path):
    data = b'{"a": 1}{"b": {"c": "}"}}  {"d": 2}\n{"e": 3}\n'
    path = tmp_path / "output"
    path.write_bytes(data)
    records = Follower(path, chain_for({"target": "x"})).read()
    assert decoded(records, "x") == [{"a": 1}, {"b": {"c": "}"}}, {"d": 2}, {"e": 3}]
    assert [json.loads(data[r.offset:r.end]) for r in records] == decoded(records, "x")


def test_an_object_larger_than_max_bytes_is_cut_reported_and_skipped_to_the_next_object(tmp_path):
    huge = event(1, Blob=["x" * 100] * 2000)
    data = pretty(event(0)) + pretty(huge) + pretty(event(2))
    path = tmp_path / "output"
    path.write_bytes(data)
    records = Follower(path, chain_for({"target": "crowdstrike", "max_bytes": 4096})).read()
    assert decoded(records) == [event(0), event(2)]
    [failure] = [r for r in records if PARSE_FAILURE_TAG in r.tags]
    assert "larger than max_bytes (4096 bytes)" in failure.fields["error"]["message"]
    assert TRUNCATED_FLAG in failure.flags
    assert failure.size <= 4096 and len(failure.content.encode()) <= 4096
    assert data[failure.offset:failure.end] == pretty(huge), "the cursor covers the whole skipped object"


def test_a_huge_single_line_object_beyond_the_line_limit_is_reported_not_held(tmp_path):
    data = json.dumps(event(0, Blob="y" * 50_000)).encode() + b"\n" + pretty(event(1))
    path = tmp_path / "output"
    path.write_bytes(data)
    follower = Follower(path, chain_for({"target": "crowdstrike"}, max_bytes=8192), max_line_bytes=8192)
    records = follower.read()
    assert decoded(records) == [event(1)]
    assert records[0].tags == [PARSE_FAILURE_TAG] and TRUNCATED_FLAG in records[0].flags


def test_keys_at_the_root_keep_message_and_decode_false():
    obj = event(0)
    text = json.dumps(obj, indent=2).splitlines()

    def run(options: dict) -> Message:
        chain, offset, out = chain_for(options), 0, []
        for line in text:
            size = len(line.encode())
            out.extend(chain.feed(Message(line, offset, offset + size + 1, size), 0.0))
            offset += size + 1
        [record] = out
        return record

    root = run({})
    assert root.fields == obj and root.content == ""
    kept = run({"target": "cs", "keep_message": True})
    assert kept.fields == {"cs": obj} and json.loads(kept.content) == obj
    framed = run({"decode": False})
    assert framed.fields == {} and framed.content == "\n".join(text)


def test_brackets_inside_strings_do_not_count():
    assert brackets('    "Note": "a {[ \\" }",') == ""
    assert brackets('    "metadata": {"a": [1, "]"]') == "{[]"
    assert brackets("    }],") == "}]"


def test_an_object_may_open_on_the_line_after_its_key():
    text = ['{', '  "metadata":', '  {', '    "list": [', '      {', '        "k": 1', '      }', '    ]', '  }', '}']
    chain, offset, out = chain_for(), 0, []
    for line in text:
        out.extend(chain.feed(Message(line, offset, offset + len(line) + 1, len(line)), 0.0))
        offset += len(line) + 1
    assert [r.fields for r in out] == [{"metadata": {"list": [{"k": 1}]}}]


def test_config_errors_name_the_key():
    problems: list = []
    parse_parsers(Section({"parsers": [{"json_objects": {"max_bytes": "big", "targte": "x"}}]}, "", "in.yml",
                          problems))
    text = "\n".join(map(str, problems))
    assert "max_bytes" in text and "targte" in text


def test_thousands_of_objects_on_one_line_come_out_one_by_one(tmp_path):
    path = tmp_path / "output"
    path.write_bytes(b"{}" * 5000 + b"\n")
    records = Follower(path, chain_for()).read()
    assert len(records) == 5000
    assert not [r for r in records if PARSE_FAILURE_TAG in r.tags]
    assert [r.end for r in records[:3]] == [2, 4, 6] and records[-1].end == 10001
