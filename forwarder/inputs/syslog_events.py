"""What turns received syslog messages into events: module-level builders for `PipelineClient.publish_raw`.

The listeners only receive and frame; parsing the header and building the event
happens here, in whatever process builds the chunk (`forwarder.workers`). So the
builders touch nothing but their arguments: a chunk's `SyslogChunk` (the input's
format and zone, when the chunk was read, and for a TCP connection its peer) and
the raw messages. A TCP read's frames go as plain `bytes` with their peer in the
context; UDP datagrams come from many peers, so each is a (bytes, source, truncated)
tuple. Both pickle in about a microsecond, where a built event costs ten.
"""

from __future__ import annotations

from datetime import tzinfo
from functools import lru_cache
from typing import Any, NamedTuple

from forwarder.inputs.syslog_parser import SyslogParser
from forwarder.pipeline.event import Event
from forwarder.stats import InputStats

# One UDP datagram: its bytes, the sender's address text, and whether it was cut at max_message_size.
Datagram = tuple[bytes, str, bool]


class SyslogChunk(NamedTuple):
    """What the messages of one chunk share."""

    format: str
    timezone: tzinfo | None
    # Epoch seconds when the chunk was read: the time of a message whose header has none, and the anchor
    # of an RFC 3164 stamp's year; taken at the read so that building later (in a worker) changes nothing.
    received: float
    # The peer of a TCP connection ("host:port"); None for UDP, whose datagrams carry their own.
    source: str | None = None
    # Every frame of the chunk was cut (at max_message_size, or by the end of its connection).
    truncated: bool = False


@lru_cache(maxsize=16)
def _parser(format: str, timezone: tzinfo | None) -> SyslogParser:
    """One parser per format and zone in each process, so its per-second timestamp cache lives across chunks."""
    return SyslogParser(format, timezone)


def build_stream_event(chunk: SyslogChunk, payload: bytes, stats: InputStats) -> Event:
    """A TCP (or TLS) frame's event; the connection's peer and the truncation come from the chunk."""
    return syslog_event(_parser(chunk.format, chunk.timezone), payload, chunk.source or "", chunk.truncated,
                        chunk.received)


def build_datagram_event(chunk: SyslogChunk, payload: Datagram, stats: InputStats) -> Event:
    """A UDP datagram's event."""
    data, source, truncated = payload
    return syslog_event(_parser(chunk.format, chunk.timezone), data, source, truncated, chunk.received)


def syslog_event(parser: SyslogParser, data: bytes, source: str, truncated: bool, received: float,
                 quick: bool = True) -> Event:
    """The event of one message: `message`, `log.syslog.*`, `log.source.address`, and tags saying what went wrong.

    A well-formed RFC 5424 message takes the parser's quick path; `quick=False` forces the general one (the
    tests compare the two events).
    """
    if quick and not truncated:
        quick = parser.parse_rfc5424_quickly(data)
        if quick is not None:
            message, syslog, timestamp = quick
            return Event({"message": message, "log": {"source": {"address": source}, "syslog": syslog}},
                         received if timestamp is None else timestamp, {})
    parsed = parser.parse(data, received)
    log: dict[str, Any] = {"source": {"address": source}}
    fields: dict[str, Any] = {"message": parsed.message, "log": log}
    meta: dict[str, Any] = {}
    tags = []
    if parsed.syslog:
        log["syslog"] = parsed.syslog
    if parsed.error:
        fields["error"] = {"message": parsed.error}
        tags.append("_parse_failure")
    if truncated:
        meta["truncated"] = True
        tags.append("_truncated")
    if parsed.invalid_utf8:
        # The bytes that were not UTF-8 became U+FFFD; the tag lets the original be looked for at the source.
        tags.append("_invalid_utf8")
    if tags:
        fields["tags"] = tags
    return Event(fields, received if parsed.timestamp is None else parsed.timestamp, meta)
