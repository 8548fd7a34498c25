"""What the aws-s3 input makes of each kind of object content, through the real forwarder against moto.

The reader only frames an object (lines, joining parsers, JSON documents); `build_event` makes the events from
picklable payloads, in the input's process or in a worker process. Both paths are checked here: the events the
real process writes, and the same chunks built in a spawned process.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import multiprocessing
import pickle
import socket

import pytest
import yaml

from forwarder.inputs.aws_s3_config import parse_config
from forwarder.inputs.aws_s3_events import build_event
from forwarder.inputs.aws_s3_objects import Bucket, ObjectReader
from forwarder.inputs.line_message import Message
from forwarder.pipeline.client import build_events
from forwarder.schema.section import Section
from forwarder.stats import InputStats
from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

BUCKET = "records"
PREFIX = "exports"
TRAIL = b'{"Records":[{"eventName":"A","n":1},{"eventName":"B","s":"\xc3\xa9"}]}'
DOCUMENTS = b'{"a":1}\n  {"b":[2]}\n'
NDJSON = b'{"user":"alice","message":"hi"}\nnot json\n'
PRETTY = b'{\n  "k": 1\n}\n{\n  "k": 2\n}\n'
LINES = '\ufeff"first"\r\n\r\n"second"\r\n'.encode()
OBJECTS = {
    f"{PREFIX}/trail/a.json.gz": (gzip.compress(TRAIL), "binary/octet-stream"),
    f"{PREFIX}/docs/b.json": (DOCUMENTS, "application/json"),
    f"{PREFIX}/ndjson/c.log": (NDJSON, "text/plain"),
    f"{PREFIX}/pretty/d.log": (PRETTY, "text/plain"),
    f"{PREFIX}/lines/e.csv": (LINES, "text/csv"),
}
INPUT_SETTINGS = """
            non_aws_bucket_name: records
            bucket_list_prefix: exports/
            bucket_list_interval: 1s
            path_style: true
            include_s3_metadata: [x-amz-meta-source]
            file_selectors:
              - regex: /trail/
                expand_event_list_from_field: Records
              - regex: /ndjson/
                parsers:
                  - ndjson: {target: ""}
              - regex: /pretty/
                parsers:
                  - multiline: {type: pattern, pattern: '^\\{', negate: true, match: after}
                  - ndjson: {target: doc}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upload(aws: MotoServer) -> None:
    aws.reset()  # moto keeps its buckets per process, across servers
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key, (body, content_type) in OBJECTS.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type, Metadata={"source": "test"})


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-worker-processes"])
def test_each_kind_of_content_becomes_the_events_filebeat_makes(tmp_path, workers):
    with MotoServer() as aws:
        upload(aws)
        forwarder = ForwarderProcess(tmp_path, f"""
        forwarder.inputs:
          - type: aws-s3
            id: records
            endpoint: {aws.endpoint}
            region: {REGION}
            access_key_id: {ACCESS_KEY_ID}
            secret_access_key: {SECRET_ACCESS_KEY}
{INPUT_SETTINGS}
        forwarder.workers: {workers}
        queue.mem.flush.timeout: 10ms
        forwarder.registry.flush: 0s
        output.file.path: ${{path.data}}/events
        logging.metrics.enabled: false
        """).start()
        try:
            wait_until(lambda: len(output_events(tmp_path)) >= 10, 60, "the ten records of the five objects")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    events = output_events(tmp_path)
    assert len(events) == 10, "nothing twice"
    by_key: dict[str, list[dict]] = {}
    for event in sorted(events, key=lambda event: event["log"]["offset"]):
        by_key.setdefault(event["aws"]["s3"]["object"]["key"].split("/")[1], []).append(event)

    trail = by_key["trail"]
    assert [event["message"] for event in trail] == ['{"eventName":"A","n":1}', '{"eventName":"B","s":"é"}']
    assert [event["log"]["offset"] for event in trail] == [0, 1]
    digest = hashlib.sha256(f"{BUCKET}{PREFIX}/trail/a.json.gz".encode()).hexdigest()[:10]
    assert trail[1]["@metadata"]["_id"] == f"{digest}-000000000001"

    assert [(event["message"], event["log"]["offset"]) for event in by_key["docs"]] == [('{"a":1}', 0),
                                                                                        ('{"b":[2]}', 10)]
    alice, broken = by_key["ndjson"]
    assert (alice["user"], alice["message"], alice["log"]["offset"]) == ("alice", "hi", 0)
    assert broken["message"] == "not json" and "_parse_failure" in broken["tags"]
    assert broken["error"]["message"].startswith("Error decoding JSON")

    pretty = by_key["pretty"]
    assert [event["doc"] for event in pretty] == [{"k": 1}, {"k": 2}]
    assert [event["log"]["offset"] for event in pretty] == [0, PRETTY.index(b"{", 1)]
    assert all(event["log"]["flags"] == ["multiline"] for event in pretty)

    first, second = by_key["lines"]
    assert (first["message"], first["log"]["offset"]) == ('"first"', 0), "the byte order mark is not kept"
    assert (second["message"], second["log"]["offset"]) == ('"second"', LINES.index(b'"second"'))
    assert first["aws"]["s3"]["metadata"] == {"x-amz-meta-source": "test"}
    assert first["cloud"] == {"provider": "aws", "region": REGION}
    assert first["log"]["file"]["path"] == f"{aws.endpoint}/{BUCKET}/{PREFIX}/lines/e.csv"
    log = forwarder.log_path.read_text()
    assert "Traceback" not in log
    assert "cannot go to a worker process" not in log, "the builder and its chunks pickle"


def build_in_this_process(chunks: list[tuple[object, list[object]]]) -> list[tuple[dict, dict, float]]:
    """Runs in a spawned process: what a worker process does with the reader's chunks."""
    stats = InputStats("records", "aws-s3")
    return [(event.fields, event.meta, event.timestamp)
            for context, payloads in chunks for event in build_events(build_event, context, payloads, stats)]


def test_the_chunks_are_plain_payloads_that_build_the_same_events_in_another_process():
    problems: list[object] = []
    with MotoServer() as aws:
        upload(aws)
        config = parse_config(Section(_settings(aws.endpoint), "input", "test", problems))
        assert not problems, problems
        reader = ObjectReader(aws.client("s3"), Bucket.from_config(config), logging.getLogger("test"),
                              InputStats("records", "aws-s3"), "records")
        chunks: list[tuple[object, list[object]]] = []
        for key in OBJECTS:
            result = reader.read(key, config.reader_options(key), 0,
                                 lambda context, payloads, end: chunks.append((context, payloads)) or True)
            assert result.complete and result.failure is None
    payloads = [payload for _, chunk in chunks for payload in chunk]
    assert len(payloads) == 10
    assert all(isinstance(payload, Message) or (type(payload) is tuple and type(payload[0]) is int and
                                                type(payload[1]) in (bytes, str)) for payload in payloads)
    assert sum(isinstance(payload, Message) for payload in payloads) == 2, "only the multiline records"
    here = build_in_this_process(pickle.loads(pickle.dumps(chunks)))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.apply(build_in_this_process, (chunks,))
    assert there == here
    assert len(here) == 10


def _settings(endpoint: str) -> dict:
    settings = yaml.safe_load(INPUT_SETTINGS)
    settings.update({"endpoint": endpoint, "region": REGION, "access_key_id": ACCESS_KEY_ID,
                     "secret_access_key": SECRET_ACCESS_KEY})
    return settings
