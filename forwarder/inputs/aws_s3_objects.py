"""Reading ONE S3 object into events: used by both modes of the `aws-s3` input.

    reader = ObjectReader(s3_client, Bucket.from_config(config), log, stats, name)
    result = reader.read(key, config.reader_options(key), start_offset, emit)

`emit(events, next_offset) -> bool` publishes a chunk of up to `CHUNK_EVENTS`
consecutive events; `next_offset` is where a resume must start once the chunk
is acknowledged (the byte after its last line in the decompressed object).
Chunks, because publishing costs a lock on the acker and one on the queue per
call: per chunk that is noise, per line it was a third of the input's time.
It returns False when the forwarder is stopping, and `read` then returns with
`result.complete` False. The caller owns the cursor: listing mode publishes
each chunk with its object's offset, SQS mode waits for the acknowledgements
of a whole message.

Problems of the object itself (corrupt or truncated gzip, a 0-byte object, a
line over `max_bytes`) are logged once naming the key, counted in /stats and
returned as `result.failure` (the counter's name); the caller records the
object as failed. A download error raises `DownloadError`: it is transient,
the caller tries again later from the last offset it published.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from logging import Logger
from typing import Any

import urllib3.exceptions
from botocore.exceptions import BotoCoreError, ClientError

from forwarder.inputs.aws_s3_config import AwsS3Config, ReaderOptions
from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import build_chain
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.stats import InputStats

READ_CHUNK = 256 * 1024
# Events per emit: a crash replays at most this many acknowledged lines of an object.
CHUNK_EVENTS = 500
GZIP_MAGIC = b"\x1f\x8b"
COUNTERS = ("objects_read", "objects_failed", "objects_invalid_gzip", "objects_empty", "objects_line_too_long",
            "objects_invalid_json", "download_errors", "lines_invalid_utf8")
Emit = Callable[[list[Event], int], bool]


class DownloadError(Exception):
    """The object could not be fetched or its stream broke: try again later (`error` is boto3's)."""

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error


class ObjectFailed(Exception):
    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter
        self.reason = reason


@dataclass(frozen=True)
class Bucket:
    name: str
    # Filebeat's bucket ARN; a non-AWS bucket's is its name. Part of every event id.
    arn: str
    region: str
    endpoint: str | None

    @classmethod
    def from_config(cls, config: AwsS3Config, name: str | None = None, arn: str | None = None) -> Bucket:
        """The configured bucket, or (SQS mode) the bucket a notification names."""
        name = name or config.bucket_name or ""
        return cls(name, arn or config.bucket_arn or f"arn:aws:s3:::{name}", config.region, config.endpoint)

    def object_url(self, key: str) -> str:
        if self.endpoint:
            return f"{self.endpoint}/{self.name}/{key}"
        return f"https://{self.name}.s3.{self.region}.amazonaws.com/{key}"


def event_id(bucket_arn: str, key: str, offset: int) -> str:
    """Filebeat's `@metadata._id`: stable across replays, so the receiver can drop them."""
    return f"{object_id_prefix(bucket_arn, key)}-{offset:012d}"


def object_id_prefix(bucket_arn: str, key: str) -> str:
    """The part of `event_id` shared by every event of an object: hashed once per object, not per line."""
    return hashlib.sha256((bucket_arn + key).encode()).hexdigest()[:10]


@dataclass
class ObjectResult:
    complete: bool
    # The counter of the problem that failed the object, None when it was read.
    failure: str | None = None
    events: int = 0


class ObjectReader:
    """Reads objects of one bucket; safe to share between worker threads."""

    def __init__(self, client: Any, bucket: Bucket, log: Logger, stats: InputStats, name: str) -> None:
        self._client = client
        self._bucket = bucket
        self._log = log
        self._stats = stats
        self._name = name
        self._lock = threading.Lock()
        for counter in COUNTERS:
            stats.extra.setdefault(counter, 0)

    def count(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            self._stats.extra[counter] = self._stats.extra.get(counter, 0) + amount

    def read(self, key: str, options: ReaderOptions, start_offset: int, emit: Emit) -> ObjectResult:
        try:
            response = self._client.get_object(Bucket=self._bucket.name, Key=key)
        except (BotoCoreError, ClientError) as error:
            self.count("download_errors")
            raise DownloadError(f"cannot download s3://{self._bucket.name}/{key}: {error}", error) from None
        body = response["Body"]
        try:
            return self._read(key, options, start_offset, emit, response)
        except ObjectFailed as failed:
            self.count(failed.counter)
            self.count("objects_failed")
            self._log.error("%s: object s3://%s/%s %s; it is recorded as failed and not read again unless it "
                            "changes", self._name, self._bucket.name, key, failed.reason)
            self._stats.error(f"s3://{self._bucket.name}/{key} {failed.reason}")
            return ObjectResult(complete=True, failure=failed.counter)
        except (BotoCoreError, ClientError, OSError, urllib3.exceptions.HTTPError) as error:
            self.count("download_errors")
            raise DownloadError(f"reading s3://{self._bucket.name}/{key} broke off: {error}", error) from None
        finally:
            body.close()

    def _read(self, key: str, options: ReaderOptions, start_offset: int, emit: Emit,
              response: dict[str, Any]) -> ObjectResult:
        stream = _decompressed(_chunks(response["Body"]))
        base = self._base_fields(key, options, response)
        read_at = time.time()
        content_type = options.content_type or response.get("ContentType") or ""
        if content_type.startswith("application/json") or options.expand_event_list_from_field:
            records = self._json_records(stream, options)
        else:
            records = self._line_records(key, stream, options, start_offset)
        id_prefix = object_id_prefix(self._bucket.arn, key)
        events = 0
        chunk: list[Event] = []
        end = start_offset
        try:
            for message in records:
                if message.offset < start_offset:
                    continue
                chunk.append(self._event(base, id_prefix, message, read_at))
                end = message.end
                if len(chunk) >= CHUNK_EVENTS:
                    if not emit(chunk, end):
                        return ObjectResult(complete=False, events=events)
                    events += len(chunk)
                    chunk = []
        except ObjectFailed:
            # The lines before the problem are good, and a failed object is not read again: send them first.
            if chunk and not emit(chunk, end):
                return ObjectResult(complete=False, events=events)
            raise
        if chunk:
            if not emit(chunk, end):
                return ObjectResult(complete=False, events=events)
            events += len(chunk)
        self.count("objects_read")
        return ObjectResult(complete=True, events=events)

    def _base_fields(self, key: str, options: ReaderOptions, response: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket
        s3: dict[str, Any] = {"bucket": {"name": bucket.name, "arn": bucket.arn}, "object": {"key": key}}
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        metadata = {name: headers[name.lower()] for name in options.include_s3_metadata if name.lower() in headers}
        if metadata:
            s3["metadata"] = metadata
        return {"log": {"file": {"path": bucket.object_url(key)}}, "aws": {"s3": s3},
                "cloud": {"provider": "aws", "region": bucket.region}}

    def _event(self, base: dict[str, Any], id_prefix: str, message: Message, read_at: float) -> Event:
        fields = {"log": {"file": base["log"]["file"], "offset": message.offset}, "aws": base["aws"],
                  "cloud": base["cloud"]}
        if message.flags:
            fields["log"]["flags"] = list(message.flags)
        if message.fields:
            deep_update(fields, message.fields, copy=False)
        if message.content:
            fields["message"] = message.content
        if message.tags:
            fields["tags"] = list(message.tags)
        meta = dict(message.meta)
        meta.setdefault("_id", f"{id_prefix}-{message.offset:012d}")
        timestamp = message.timestamp if message.timestamp is not None else read_at
        return Event(fields, timestamp=timestamp, meta=meta)

    def _line_records(self, key: str, stream: Iterator[bytes], options: ReaderOptions,
                      start_offset: int) -> Iterator[Message]:
        chain = build_chain(list(options.parsers), options.max_bytes)
        invalid = 0
        for offset, end, line in _lines(stream, start_offset, options.max_bytes):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                text = line.decode("utf-8", "replace")
                invalid += 1
            if offset == 0 and text.startswith("\ufeff"):
                text = text[1:]
            if text:
                yield from chain.feed(Message(text, offset, end, len(line)), time.monotonic())
        yield from chain.flush(time.monotonic())
        if invalid:
            self.count("lines_invalid_utf8", invalid)
            self._log.warning("%s: object s3://%s/%s has %d line(s) that are not valid UTF-8; sent with the bad "
                              "bytes replaced (U+FFFD)", self._name, self._bucket.name, key, invalid)

    def _json_records(self, stream: Iterator[bytes], options: ReaderOptions) -> Iterator[Message]:
        """One message per JSON document, or per element of `expand_event_list_from_field`.

        An element's offset is its document's offset plus its index: unique and increasing within the object.
        """
        data = bytearray()
        for chunk in stream:
            data += chunk
            if len(data) > options.max_bytes:
                raise ObjectFailed("objects_line_too_long", f"is a JSON document larger than max_bytes "
                                   f"({options.max_bytes} bytes); raise max_bytes")
        text = data.decode("utf-8", "replace")
        decoder = json.JSONDecoder()
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return
            try:
                document, end = decoder.raw_decode(text, position)
            except ValueError as error:
                raise ObjectFailed("objects_invalid_json", f"is not valid JSON at character {position}: "
                                   f"{error}") from None
            items = document.get(options.expand_event_list_from_field) if isinstance(document, dict) and \
                options.expand_event_list_from_field else None
            if isinstance(items, list):
                for index, item in enumerate(items):
                    content = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
                    yield Message(content, position + index, position + index + 1, len(content))
            else:
                yield Message(text[position:end], position, end, end - position)
            position = end


def _chunks(body: Any) -> Iterator[bytes]:
    while chunk := body.read(READ_CHUNK):
        yield chunk


def _decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The object's bytes, gunzipped when they start with gzip's magic bytes (concatenated members too)."""
    first = next(chunks, b"")
    if not first:
        raise ObjectFailed("objects_empty", "is empty (0 bytes)")
    if not first.startswith(GZIP_MAGIC):
        yield first
        yield from chunks
        return
    decompressor = zlib.decompressobj(wbits=31)
    member_open = False
    for data in _prepend(first, chunks):
        while data:
            member_open = True
            try:
                out = decompressor.decompress(data, READ_CHUNK * 4)
            except zlib.error as error:
                raise ObjectFailed("objects_invalid_gzip", f"is not a valid gzip stream ({error})") from None
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                member_open = False
                if not data.strip(b"\0"):
                    break
            else:
                data = decompressor.unconsumed_tail
    if member_open:
        raise ObjectFailed("objects_invalid_gzip", "is a truncated gzip stream (it ends before the gzip trailer)")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _lines(stream: Iterator[bytes], start_offset: int, max_bytes: int) -> Iterator[tuple[int, int, bytes]]:
    """(offset, offset after the line, line without `\\n`/`\\r\\n`), from `start_offset` on."""
    offset = 0
    pending = b""
    for chunk in stream:
        if offset < start_offset:
            cut = min(len(chunk), start_offset - offset)
            chunk = chunk[cut:]
            offset += cut
            if not chunk:
                continue
        data = pending + chunk if pending else chunk
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            yield offset + start, offset + newline + 1, _line(data, start, newline, max_bytes, offset)
            start = newline + 1
        pending = data[start:]
        offset += start
        if len(pending) > max_bytes:
            raise _too_long(offset, max_bytes)
    if pending:
        yield offset, offset + len(pending), _line(pending, 0, len(pending), max_bytes, offset)


def _line(data: bytes, start: int, end: int, max_bytes: int, base: int) -> bytes:
    if end > start and data[end - 1] == 0x0D:
        end -= 1
    if end - start > max_bytes:
        raise _too_long(base + start, max_bytes)
    return data[start:end]


def _too_long(offset: int, max_bytes: int) -> ObjectFailed:
    return ObjectFailed("objects_line_too_long", f"has a line longer than max_bytes ({max_bytes} bytes) at offset "
                        f"{offset}; raise max_bytes for these objects")
