"""The syslog builders run wherever the pipeline builds events: from their arguments alone, in another process too."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from forwarder.inputs.syslog_events import SyslogChunk, build_datagram_event, build_stream_event
from forwarder.pipeline.client import build_events
from forwarder.stats import InputStats

RECEIVED = datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()
FRAMES = [
    b"<165>1 2024-06-01T10:20:30.25+02:00 fw01 app 42 ID7 [ex@1 a=\"b\"] hello",
    b"<13>Dec 31 23:59:59 host sshd[7]: late last year",
    b"no priority here",
]


def built(build, chunk, payloads) -> list[tuple[float, dict, dict]]:
    """What the events of a chunk are made of, built in whichever process calls this."""
    return [(event.timestamp, event.fields, event.meta)
            for event in build_events(build, chunk, payloads, InputStats("syslog-test", "syslog"))]


def test_a_stream_chunk_builds_from_its_arguments():
    chunk = SyslogChunk("auto", UTC, RECEIVED, "192.0.2.7:514")
    first, last_year, garbage = built(build_stream_event, chunk, FRAMES)
    assert first[0] == datetime(2024, 6, 1, 8, 20, 30, 250000, tzinfo=UTC).timestamp()
    assert first[1]["message"] == "hello"
    assert first[1]["log"]["source"] == {"address": "192.0.2.7:514"}
    assert first[1]["log"]["syslog"]["structured_data"] == {"ex@1": {"a": "b"}}
    # The year of an RFC 3164 stamp comes from when the chunk was read, not from when it is built.
    assert last_year[0] == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    # No header time: the time the chunk was read.
    assert garbage[0] == RECEIVED and garbage[1]["tags"] == ["_parse_failure"]


def test_truncation_comes_from_the_stream_chunk_and_from_each_datagram():
    [(_, fields, meta)] = built(build_stream_event, SyslogChunk("auto", UTC, RECEIVED, "h:1", True), [b"<13>cut"])
    assert meta == {"truncated": True} and fields["tags"] == ["_truncated"]
    datagrams = [(b"<13>whole", "198.51.100.1:5000", False), (b"<13>cut", "198.51.100.2:5001", True)]
    whole, cut = built(build_datagram_event, SyslogChunk("auto", UTC, RECEIVED), datagrams)
    assert (whole[1]["log"]["source"]["address"], whole[2]) == ("198.51.100.1:5000", {})
    assert (cut[1]["log"]["source"]["address"], cut[2]) == ("198.51.100.2:5001", {"truncated": True})


def test_a_chunk_pickles_and_builds_the_same_in_a_fresh_process():
    """What a worker process gets: the builder by reference, the chunk and the raw frames; no input object."""
    chunk = SyslogChunk("auto", ZoneInfo("Europe/Berlin"), RECEIVED, "192.0.2.7:514")
    shipped = pickle.loads(pickle.dumps((build_stream_event, chunk, FRAMES), pickle.HIGHEST_PROTOCOL))
    assert shipped[0] is build_stream_event and shipped[1] == chunk
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        elsewhere = pool.submit(built, *shipped).result(timeout=120)
    assert elsewhere == built(build_stream_event, chunk, FRAMES)
