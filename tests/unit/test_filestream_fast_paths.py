"""The filestream input's short ways give exactly what the long ways give, over a corpus of edge cases.

Three short ways: lines handed to the pipeline undecoded and built by `build_line_event` (with
orjson reading a plain ndjson line straight into the event's fields) instead of decoded into a
Message by the reader and built by `build_file_event`; the reader cutting a whole chunk and
numbering its lines at once; and `EventEncoder.encode` joining the encoded fields and metadata
instead of encoding a document built from them. Each is compared with the long way on every case;
built events go on through the real pipeline client (agent, host, tags, `fields`, processors) down
to the bytes the output sends: the same bytes, or, where a plain ndjson line is sent as it was read
(Event.raw_fields), the same JSON object holding the line's own text.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from forwarder.inputs.file_events import _plain_ndjson_event, build_file_event, build_line_event, file_payload
from forwarder.inputs.file_reader import FilePosition, FileReader, decode_line, file_identity
from forwarder.inputs.ndjson_parser import NdjsonConfig
from forwarder.outputs.codec import EventEncoder, _fallback
from forwarder.pipeline.client import AgentInfo, ClientSettings, PipelineClient
from forwarder.pipeline.conditions import condition_fields
from forwarder.pipeline.event import Event
from forwarder.pipeline.json_text import json_bytes
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section
from forwarder.stats import InputStats

SURROGATE_PAIR = b'"\\ud83d\\ude00"'
CORPUS: list[bytes] = [
    b'{"a":1,"b":"x","c":[1,2,{"d":null}],"e":{"f":{"g":true}}}',
    b'{"a":1,"a":2}',
    b'{"n":{"x":1,"x":{"y":2}},"n":{"z":3}}',
    b'{"log":{"level":"info"},"x":1}',
    b'{"log":"text"}',
    b'{"log":{"offset":5,"file":{"path":"/elsewhere"},"flags":["mine"]}}',
    b'{"message":"inner","x":1}',
    b'{"message":17}',
    b'{"tags":["a"],"x":1}',
    b'{"tags":"not a list"}',
    b'{"@timestamp":"2024-01-02T03:04:05.678Z","x":1}',
    b'{"@timestamp":17}',
    b'{"@timestamp":"garbage"}',
    b'{"@metadata":{"_id":"own","pipeline":"p","beat":"other"},"x":1}',
    b'{"@metadata":"text"}',
    b'{"type":"t"}',
    b'{"type":"_x"}',
    b'{"type":5}',
    b'{"input":{"type":"x"},"agent":{"name":"a"},"ecs":{"version":"1"},"host":{"name":"h"},"fields":{"f":1}}',
    b'{"host":"a string","agent":[1],"input":null}',
    b'{"error":{"message":"mine"}}',
    b'{"a.b":1,"a":{"c":2},"x.y.z":3}',
    b'{"id":"doc-1","nested":{"id":"n"}}',
    b'{"json":{"keep":1}}',
    b"[1,2]",
    b'"a string"',
    b"1",
    b"null",
    b"",
    b"   ",
    b"{}",
    b'{"a":1',
    b"not json at all",
    b'{"a":NaN}',
    b'{"k":"v"} trailing',
    b'{"u":"\\u00e9\\u2603 ' + SURROGATE_PAIR[1:-1] + b'"}',
    b'{"lone":"\\ud800"}',
    b'{"lone_low":"\\udc00x"}',
    '{"raw":"é☃😀","ключ":"значение"}'.encode(),
    b'{"bad":"\xff\xfe"}',
    b'{"surrogate_bytes":"\xed\xa0\x80"}',
    b'\xef\xbb\xbf{"bom":1}',
    b'{"big":123456789012345678901234567890,"neg":-9223372036854775809}',
    b'{"max":18446744073709551615,"over":18446744073709551616}',
    b'{"f":1.0,"e":1E5,"z":-0.0,"small":5e-324,"exp":1.5e-7}',
    b'{"inf":1e400}',
    b'  {"ws":1}  ',
    b'\t{"ws":2}\r',
    b'{"control":"\x01"}',
    b'{"nul":"\\u0000","esc":"\\"\\\\\\/\\b\\f\\n\\r\\t"}',
    b'{"deep":' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"too_deep_for_orjson_dumps":' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"":1,"true":true,"false":false,"null":null}',
    b'{"x":"' + b"y" * 5000 + b'"}',
    b"plain text line with \x00 and \xc3\xa9",
]

CONFIGS: list[tuple[NdjsonConfig, ...]] = [
    (),
    (NdjsonConfig(),),
    (NdjsonConfig(overwrite_keys=True),),
    (NdjsonConfig(add_error_key=False),),
    (NdjsonConfig(overwrite_keys=True, add_error_key=False),),
    (NdjsonConfig(message_key="message"),),
    (NdjsonConfig(document_id="id"),),
    (NdjsonConfig(target="json"),),
    (NdjsonConfig(expand_keys=True, overwrite_keys=True),),
    (NdjsonConfig(), NdjsonConfig(add_error_key=False)),
]


def processors(items: list[dict[str, Any]]) -> list[Any]:
    problems: list[Any] = []
    built = build_processors(Section({"processors": items}, "", "test", problems).sections("processors"))
    assert not problems
    return built


def client(**settings: Any) -> PipelineClient:
    return PipelineClient(ClientSettings("corpus", "filestream", **settings), None, None, [],  # type: ignore[arg-type]
                          AgentInfo(name="host-1", id="agent-id", ephemeral_id="eph-id"),
                          InputStats("corpus", "filestream"), dict)


def clients() -> list[PipelineClient]:
    return [
        client(),
        client(tags=["t1", "forwarded"], fields={"env": "prod", "n": {"k": 1}}),
        client(fields={"log": {"x": 1}, "message": "from fields", "tags": ["f"], "@timestamp": "2020-01-01T00:00:00Z"},
               fields_under_root=True),
        client(fields={"@metadata": {"m": 1}}, fields_under_root=True),
        client(processors=processors([{"add_host_metadata": {"when": {"not": {"contains": {"tags": "forwarded"}}}}}])),
        client(processors=processors([
            {"add_fields": {"target": "", "fields": {"added": {"v": 1}}}},
            {"drop_fields": {"fields": ["agent.ephemeral_id", "x"], "ignore_missing": True}},
            {"rename": {"fields": [{"from": "a", "to": "renamed_a"}], "ignore_missing": True}},
            {"drop_event": {"when": {"equals": {"x": 1}}}},
        ])),
    ]


def same_now(fast: Event, slow: Event, before: float, after: float) -> None:
    """Events stamped with the time they were built get one stamp; any other timestamp must be equal."""
    if before <= fast.timestamp <= after and before <= slow.timestamp <= after:
        fast.timestamp = slow.timestamp = 1700000000.123
    assert fast.timestamp == slow.timestamp


def fields_of(event: Event) -> dict[str, Any]:
    """The event's fields with its raw fields merged, leaving the event as it is."""
    return event.fields if event.raw_fields is None else {**event.fields, **event.raw_fields[1]}


def repeated_top_level_keys(document: bytes) -> set[str]:
    """Keys written more than once at the top of a JSON object (a decoder keeps only the last)."""
    objects: list[list[tuple[str, Any]]] = []
    json.loads(document, object_pairs_hook=lambda pairs: objects.append(pairs) or dict(pairs))
    keys = [key for key, _ in objects[-1]]
    return {key for key in keys if keys.count(key) > 1}


def long_way(context: Any, data: bytes, offset: int, truncated: bool) -> Event | None:
    """What the input did before: decode into a Message, hand over its parts, build from them."""
    return build_file_event(context, file_payload(decode_line(data, offset, offset + len(data) + 1, truncated)),
                            InputStats("corpus", "filestream"))


def encoded_the_long_way(encoder: EventEncoder, event: Event) -> bytes:
    return json_bytes(encoder.document(event), _fallback)


@pytest.mark.parametrize("stages", CONFIGS, ids=lambda stages: repr(stages) if stages else "no parsers")
def test_lines_built_in_the_worker_equal_lines_decoded_by_the_reader(stages):
    context = ("/var/log/app.ndjson", "2049", "1234", "2049-1234", stages)
    encoder = EventEncoder()
    pipelines = clients()
    compared = sent_as_read = 0
    for data in CORPUS:
        for offset in (0, 1234):
            for truncated in (False, True):
                for pipeline in pipelines:
                    before = time.time()
                    fast = build_line_event(context, (data, offset, truncated), pipeline.stats)
                    slow = long_way(context, data, offset, truncated)
                    after = time.time()
                    case = f"{data[:80]!r} at {offset}, truncated={truncated}"
                    if slow is None:
                        assert fast is None, case
                        continue
                    assert fast is not None, case
                    same_now(fast, slow, before, after)
                    assert (fields_of(fast), fast.meta) == (slow.fields, slow.meta), case
                    try:
                        slow = pipeline.prepare(slow)
                    except Exception as refused:
                        # A record whose `host` or `input` is not an object (the pipeline's to fix).
                        with pytest.raises(type(refused)):
                            pipeline.prepare(fast)
                        continue
                    fast = pipeline.prepare(fast)
                    if slow is None:
                        assert fast is None, case
                        continue
                    assert fast is not None, case
                    raw = fast.raw_fields is not None
                    sent, expected = encoder.encode(fast), encoded_the_long_way(encoder, slow)
                    if raw:
                        # The line's own text went out: the same JSON object (its members after the pipeline's
                        # own), written as the line wrote it.
                        assert orjson.loads(sent) == orjson.loads(expected), case
                        assert repeated_top_level_keys(sent) <= repeated_top_level_keys(data.strip()), case
                        if fast.raw_fields is not None:  # not merged by the encoder's slower ways
                            assert data.strip()[1:] in sent, case
                            sent_as_read += 1
                    else:
                        assert sent == expected, case
                    compared += 1
    assert compared > len(CORPUS) * 10
    assert sent_as_read > (10 if stages == (NdjsonConfig(),) else -1)


def test_the_plain_ndjson_way_is_taken_for_ordinary_objects_and_refuses_the_special_ones():
    context = ("/p", "1", "2", "1-2", (NdjsonConfig(),))
    taken = [data for data in CORPUS if _plain_ndjson_event(context, data, 7) is not None]
    assert CORPUS[0] in taken and b'{"a":1,"a":2}' in taken and b'  {"ws":1}  ' in taken
    assert len(taken) >= 20
    for refused in (b'{"log":"text"}', b'{"@timestamp":17}', b'{"@metadata":"text"}', b'{"type":"t"}', b"{}",
                    b"[1,2]", b'{"bad":"\xff\xfe"}', b'\xef\xbb\xbf{"bom":1}', b'{"inf":1e400}'):
        assert _plain_ndjson_event(context, refused, 7) is None, refused


ENCODER_CASES: list[Event] = [
    Event({}, timestamp=1.5),
    Event({}, timestamp=1.5, meta={"_id": "only metadata"}),
    Event({"message": "m"}, timestamp=1700000000.9996),
    Event({"message": "m"}, timestamp=1700000000.9996, meta={"_id": "x", "pipeline": "p"}),
    Event({"@timestamp": "own", "message": "m"}, timestamp=2.0),
    Event({"@metadata": {"own": 1}, "message": "m"}, timestamp=2.0, meta={"_id": "y"}),
    Event({"message": "m"}, timestamp=3.0, meta={"beat": "other", "_id": "z"}),
    Event({"message": "m"}, timestamp=3.0, meta={"type": "t"}),
    Event({"message": "m"}, timestamp=3.0, meta={"_id": "v", "version": "0"}),
    Event({"fields": {1: "numeric key", 2.5: "float key"}}, timestamp=4.0),
    Event({"big": 123456789012345678901234567890, "n": {"neg": -(2 ** 70)}}, timestamp=5.0),
    Event({"max": 2 ** 64 - 1, "min": -(2 ** 63)}, timestamp=5.0),
    Event({"raw": b"\xffbytes", "set": {3}, "tuple": (1, 2), "path": Path("/var/log")}, timestamp=6.0),
    Event({"lone": "\ud800", "ok": "é"}, timestamp=7.0),
    Event({"m": 1}, timestamp=8.0, meta={"_id": b"bytes id", "n": {5: "x"}}),
    Event({"m": 1}, timestamp=8.0, meta={"lone": "\udfff"}),
    Event({"f": float("nan"), "g": float("inf"), "deep": [[[[]]]]}, timestamp=9.0),
    Event({"nested": {"@timestamp": "inner is fine", "@metadata": 1}}, timestamp=10.0),
    Event({"a": 1}, timestamp=-0.0005, meta={"": ""}),
    Event(MappingProxyType({"read-only": 1}), timestamp=11.0, meta={"_id": "r"}),  # type: ignore[arg-type]
    Event({"a": 1}, timestamp=11.0, meta=MappingProxyType({"_id": "r"})),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("event", ENCODER_CASES, ids=range(len(ENCODER_CASES)))
def test_encoding_without_building_the_document_writes_the_same_bytes(event):
    for encoder in (EventEncoder(), EventEncoder("Custom-Index", version="9.9.9")):
        try:
            expected = encoded_the_long_way(encoder, event)
        except Exception as refused:
            with pytest.raises(type(refused)):
                encoder.encode(event)
            continue
        assert encoder.encode(event) == expected


def reference_lines(content: bytes, limit: int) -> list[tuple[bytes, int, bool]]:
    """(bytes, offset, truncated) of every complete line, as Filebeat cuts them: at `\\n`, one `\\r` before it
    dropped, cut at `limit` bytes."""
    lines = []
    offset = 0
    for part in content.split(b"\n")[:-1]:
        text = part[:-1] if part.endswith(b"\r") else part
        lines.append((text[:limit], offset, len(text) > limit))
        offset += len(part) + 1
    return lines


def random_content(generator: random.Random, limit: int, plain: bool) -> bytes:
    """Lines of random lengths (short and long ones: the reader cuts them two ways); unless `plain`, with
    carriage returns and lines at and over the limit."""
    alphabet = b'ab{}" x\xc3\xa9' if plain else b'ab{}"\r x\xc3\xa9'
    pieces = []
    for _ in range(generator.randrange(200, 600)):
        kind = 1.0 if plain else generator.random()
        if kind < 0.05:
            length = generator.randrange(limit - 2, limit + 3)
        elif kind < 0.08:
            length = generator.randrange(limit, 70_000)
        else:
            length = generator.randrange(0, limit if plain else min(300, limit))
        body = bytes(generator.choice(alphabet) for _ in range(min(length, 64))) * (length // 64 + 1)
        ending = b"\n" if plain else generator.choice([b"\n", b"\r\n", b"\r\r\n", b"\n"])
        pieces.append(body[:length] + ending)
    pieces.append(b"unfinished last line")
    return b"".join(pieces)


@pytest.mark.parametrize("plain", [False, True], ids=["carriage returns and long lines", "plain lines"])
@pytest.mark.parametrize("seed", range(6))
def test_cutting_chunks_at_once_finds_the_lines_and_offsets_of_cutting_line_by_line(tmp_path: Path, seed, plain):
    generator = random.Random(seed)
    limit = generator.choice([100, 1000, 4096])
    content = random_content(generator, limit, plain)
    path = tmp_path / "lines.log"
    path.write_bytes(content)
    stat = path.stat()
    reader = FileReader.open(str(path), file_identity(stat), FilePosition(), limit)
    got: list[tuple[bytes, int, bool]] = []
    ends: list[int] = []
    try:
        while not reader.at_eof:
            for data, offset, end, truncated, skip in reader.read_raw_lines(generator.randrange(1, 200_000)):
                got.append((data, offset, truncated))
                ends.append(end)
                assert skip == (end < len(content) and content[end - 1:end] != b"\n")
    finally:
        reader.close()
    assert got == reference_lines(content, limit)
    assert ends == sorted(ends)
    assert reader.position.offset == content.rindex(b"\n") + 1
    for skip in (False, True):
        reader.restart()
        expected = FilePosition(ends[-1], skip, reader.fingerprint, reader.fingerprint_size, reader.generation)
        assert reader.cursor("id", str(path), ends[-1], skip) == {"id": expected.to_cursor(str(path))}


def raw_line_event(line: bytes) -> Event:
    event = _plain_ndjson_event(("/p", "1", "2", "1-2", (NdjsonConfig(),)), line, 7)
    assert event is not None and event.raw_fields is not None
    return event


def test_a_line_sent_as_read_is_merged_before_anything_reads_or_changes_its_fields():
    event = raw_line_event(b'{"user":{"name":"ann"},"n":1}')
    assert event.get("user.name") == "ann" and event.raw_fields is None
    assert event.fields["log"]["offset"] == 7 and event.fields["n"] == 1
    event = raw_line_event(b'{"user":{"name":"ann"}}')
    event.put("user.id", 5)
    assert event.fields["user"] == {"name": "ann", "id": 5} and event.raw_fields is None
    event = raw_line_event(b'{"n":1}')
    assert event.get("@metadata._id") == "1-2-7" and event.raw_fields is not None


@pytest.mark.parametrize("line, pipeline, stays_raw", [
    (b'{"n":1,"message":"m"}', client(), True),
    (b'{"n":1}', client(tags=["t"], fields={"env": "prod"}), True),
    (b'{"tags":["mine"]}', client(tags=["t"]), False),
    (b'{"fields":{"a":1}}', client(fields={"env": "prod"}), False),
    (b'{"env":"line"}', client(fields={"env": "prod"}, fields_under_root=True), False),
    (b'{"host":{"ip":"10.0.0.1"}}', client(), False),
    (b'{"agent":"x"}', client(), False),
    (b'{"ecs":1}', client(), False),
    (b'{"input":"mine"}', client(), False),
    (b'{"host":{"ip":"10.0.0.1"}}', client(disable_host=True), True),
    (b'{"event":{"kind":"x"},"n":1}', client(module_fields={"event": {"module": "m"}}), False),
    (b'{"n":1}', client(module_fields={"event": {"module": "m"}}), True),
    (b'{"n":1}', client(processors=processors([{"add_host_metadata": {"when": {"not": {"contains": {
        "tags": "forwarded"}}}}}])), True),
    (b'{"tags":["a"]}', client(processors=processors([{"add_host_metadata": {"when": {"not": {"contains": {
        "tags": "forwarded"}}}}}])), False),
    (b'{"n":1}', client(processors=processors([{"add_host_metadata": {"when": {"equals": {"n": 1}}}}])), False),
    (b'{"n.x":1}', client(processors=processors([{"add_host_metadata": {"when": {"has_fields": ["n.x.y"]}}}])),
     False),
    (b'{"n":1}', client(processors=processors([{"add_id": {}}])), True),
    (b'{"n":{"id":"mine"}}', client(processors=processors([{"add_id": {"target_field": "n.id"}}])), False),
    (b'{"x":1}', client(processors=processors([{"drop_fields": {"fields": ["y"], "ignore_missing": True}}])),
     False),
])
def test_the_pipeline_merges_a_raw_line_when_it_writes_one_of_its_fields_or_runs_processors(line, pipeline, stays_raw):
    prepared = pipeline.prepare(raw_line_event(line))
    assert prepared is not None
    assert (prepared.raw_fields is not None) == stays_raw
    sent = EventEncoder().encode(prepared)
    assert repeated_top_level_keys(sent) == set()
    document = orjson.loads(sent)
    replaced = {"tags", "host", "agent", "fields", "env", "ecs", "input", "event"}
    if line == b'{"n":{"id":"mine"}}':
        replaced.add("n")
    for key, value in orjson.loads(line).items():
        if key not in replaced:
            assert document[key] == value
    assert document["agent"]["name"] == "host-1" and document["log"]["offset"] == 7
    assert document["ecs"]["version"]  # the forwarder's, always
    assert document["input"]["type"] == "filestream" if b'"input"' not in line else document["input"] == "mine"
    if b'"event"' in line:
        assert document["event"] == {"kind": "x", "module": "m"}
    if line == b'{"tags":["mine"]}':
        assert document["tags"] == ["mine", "t"]
    if line == b'{"host":{"ip":"10.0.0.1"}}':
        added = {} if pipeline.settings.disable_host else {"name": "host-1"}
        assert document["host"] == {"ip": "10.0.0.1", **added}
    if line == b'{"n":{"id":"mine"}}':
        assert document["n"]["id"] != "mine" and len(document["n"]["id"]) == 20
    if line.startswith(b'{"n":1,"message"'):
        assert prepared.size == 512 + 2 * len("m")


@pytest.mark.parametrize("when, fields", [
    ({"not": {"contains": {"tags": "forwarded"}}}, {"tags"}),
    ({"equals": {"event": {"code": 4624}}}, {"event", "event.code"}),
    ({"range": {"http.response.code": {"gte": 400}}},
     {"http", "http.response", "http.response.code", "http.response.code.gte"}),
    ({"and": [{"has_fields": ["a.b"]}, {"or": [{"regexp": {"c": "x"}}, {"network": {"ip": "private"}}]}]},
     {"a", "a.b", "c", "ip"}),
    ({"equals": {"@metadata": {"x": 1}}}, set()),
    ({"has_fields": "tags"}, {"tags"}),
    ({"unknown": {"a": 1}}, None),
    ({"and": [{"equals": {"a": 1}}, "not a condition"]}, None),
])
def test_condition_fields_names_every_top_level_key_a_condition_may_read(when, fields):
    assert condition_fields(when) == (None if fields is None else frozenset(fields))
