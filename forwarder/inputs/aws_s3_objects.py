"""Reading ONE S3 object into events: used by both modes of the `aws-s3` input.

    reader = ObjectReader(s3_client, Bucket.from_config(config), log, stats, name)
    result = reader.read(key, config.reader_options(key), start_offset, emit)

`emit(context, payloads, next_offset) -> bool` publishes a chunk of up to
`CHUNK_EVENTS` consecutive records with `client.publish_raw(build_event,
context, payloads, cursor)`: the reader only frames the object (download,
gunzip, lines, joining parsers, JSON documents) and aws_s3_events.build_event
makes the events, in a worker process when `forwarder.workers` runs them.
`next_offset` is where a resume must start once the chunk is acknowledged (the
byte after its last line in the decompressed object). Chunks, because
publishing costs a lock on the acker and one on the queue per call (and a
pickle round trip to a worker): per chunk that is noise, per line it was a
third of the input's time. It returns False when the forwarder is stopping,
and `read` then returns with `result.complete` False. The caller owns the
cursor: listing mode publishes each chunk with its object's offset, SQS mode
waits for the acknowledgements of a whole message.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from logging import Logger
from typing import Any

import urllib3.exceptions
from botocore.exceptions import BotoCoreError, ClientError

from forwarder.inputs.aws_s3_config import AwsS3Config, ReaderOptions
from forwarder.inputs.aws_s3_events import BYTE_ORDER_MARK, ObjectContext
from forwarder.inputs.aws_s3_framing import (
    CHUNK_EVENTS,
    ObjectFailed,
    chunked,
    decompressed,
    line_blocks,
    read_blocks,
    valid_utf8,
)
from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import build_chain
from forwarder.inputs.ndjson_parser import NdjsonConfig
from forwarder.stats import InputStats

COUNTERS = ("objects_read", "objects_failed", "objects_invalid_gzip", "objects_empty", "objects_line_too_long",
            "objects_invalid_json", "download_errors", "lines_invalid_utf8")
# emit(context, payloads, next_offset) -> bool: hands a chunk to client.publish_raw with build_event.
Emit = Callable[[ObjectContext, list[Any], int], bool]


class DownloadError(Exception):
    """The object could not be fetched or its stream broke: try again later (`error` is boto3's)."""

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error


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
        stream = decompressed(read_blocks(response["Body"]))
        content_type = options.content_type or response.get("ContentType") or ""
        json_content = content_type.startswith("application/json") or bool(options.expand_event_list_from_field)
        joining = _joining_parsers(options.parsers)
        left_to_builder = () if json_content else options.parsers[len(joining):]
        context = self._context(key, options, response, left_to_builder)
        if json_content:
            records = chunked(self._json_records(stream, options), start_offset)
        elif joining:
            records = chunked(self._joined_records(key, stream, options, joining, start_offset), start_offset)
        else:
            records = self._line_chunks(key, stream, options, start_offset)
        events = 0
        for payloads, end in records:
            if not emit(context, payloads, end):
                return ObjectResult(complete=False, events=events)
            events += len(payloads)
        self.count("objects_read")
        return ObjectResult(complete=True, events=events)

    def _context(self, key: str, options: ReaderOptions, response: dict[str, Any],
                 parsers: tuple[Any, ...]) -> ObjectContext:
        bucket = self._bucket
        s3: dict[str, Any] = {"bucket": {"name": bucket.name, "arn": bucket.arn}, "object": {"key": key}}
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        metadata = {name: headers[name.lower()] for name in options.include_s3_metadata if name.lower() in headers}
        if metadata:
            s3["metadata"] = metadata
        return ObjectContext({"path": bucket.object_url(key)}, {"s3": s3}, {"provider": "aws", "region": bucket.region},
                             object_id_prefix(bucket.arn, key), time.time(), parsers)

    def _line_chunks(self, key: str, stream: Iterator[bytes], options: ReaderOptions,
                     start_offset: int) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
        """Chunks of (offset, line) payloads and the offset after the chunk's last line; empty lines are skipped.

        The builder decodes the lines; here they are only checked for invalid UTF-8 (one C call per block of
        ASCII lines), so that the object is logged once with the count.
        """
        chunk: list[tuple[int, bytes]] = []
        chunk_end = start_offset
        invalid = 0
        try:
            for offset, lines, terminated in line_blocks(stream, start_offset, options.max_bytes):
                if not all(map(bytes.isascii, lines)):
                    invalid += sum(1 for line in lines if not valid_utf8(line))
                for line in lines:
                    end = offset + len(line) + terminated
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    if line:
                        chunk.append((offset, line))
                        chunk_end = end
                        if len(chunk) >= CHUNK_EVENTS:
                            yield chunk, chunk_end
                            chunk = []
                    offset = end
        except ObjectFailed:
            # The lines before the problem are good, and a failed object is not read again: send them first.
            if chunk:
                yield chunk, chunk_end
            raise
        finally:
            self._report_invalid(key, invalid)
        if chunk:
            yield chunk, chunk_end

    def _joined_records(self, key: str, stream: Iterator[bytes], options: ReaderOptions, joining: tuple[Any, ...],
                        start_offset: int) -> Iterator[tuple[Message, int, int]]:
        """(message, offset, end) of the records the joining parsers make; the ndjson stages after them are
        left to the builder."""
        chain = build_chain(list(joining), options.max_bytes)
        invalid = 0
        try:
            for offset, lines, terminated in line_blocks(stream, start_offset, options.max_bytes):
                for line in lines:
                    end = offset + len(line) + terminated
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError:
                        text = line.decode("utf-8", "replace")
                        invalid += 1
                    if offset == 0 and text.startswith(BYTE_ORDER_MARK):
                        text = text[1:]
                    if text:
                        for message in chain.feed(Message(text, offset, end, len(line)), time.monotonic()):
                            yield message, message.offset, message.end
                    offset = end
            for message in chain.flush(time.monotonic()):
                yield message, message.offset, message.end
        finally:
            self._report_invalid(key, invalid)

    def _report_invalid(self, key: str, invalid: int) -> None:
        if invalid:
            self.count("lines_invalid_utf8", invalid)
            self._log.warning("%s: object s3://%s/%s has %d line(s) that are not valid UTF-8; sent with the bad "
                              "bytes replaced (U+FFFD)", self._name, self._bucket.name, key, invalid)

    def _json_records(self, stream: Iterator[bytes], options: ReaderOptions) -> Iterator[tuple[str, int, int]]:
        """((offset, text), offset, end) per JSON document, or per element of `expand_event_list_from_field`.

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
                    yield (position + index, content), position + index, position + index + 1
            else:
                yield (position, text[position:end]), position, end
            position = end


def _joining_parsers(parsers: tuple[Any, ...]) -> tuple[Any, ...]:
    """The parsers up to the last one that joins records (multiline, json_objects): they run in the reader.

    () when none joins: the ndjson stages decode one record on its own, so the builder runs them all.
    """
    last = max((index for index, config in enumerate(parsers) if not isinstance(config, NdjsonConfig)), default=-1)
    return tuple(parsers[:last + 1])
