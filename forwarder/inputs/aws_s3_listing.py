"""Listing mode of the `aws-s3` input: poll a bucket prefix and read every object not read yet.

Umbrella's keys end in a random suffix and objects land late, so key order
says nothing about what is new: each poll lists the whole prefix (paginated)
and compares it with the state of every object, never `StartAfter`.

The state of an object lives in the registry under the source
`<bucket>/<key>`: `{etag, size, last_modified, offset, status}`, status being
`reading` (offset = the byte after the last acknowledged line), `done` or
`failed`. Every event is published with its object's `reading` cursor and the
final state is committed after the last event, so the registry moves only on
acknowledgement and a crash mid-object resumes at the first unacknowledged
line. A changed etag reads the object again from 0. States of objects that
are no longer listed, or older than `ignore_older`, are removed, which keeps
the registry and memory the size of the bucket's retention.

A failed listing or download is tried again after an exponential backoff
with jitter (not only at the next interval: with a 120 s interval one lost
connection would delay a whole ten-minute Umbrella batch). An object is tried
`OBJECT_ATTEMPTS` times, each from its last published line, then left to the
next listing. Credentials S3 refuses (aws_s3_errors.py) park the input with
one line naming the access key id and the fix, instead of retrying.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from forwarder.backoff import Backoff
from forwarder.inputs.aws_s3_clients import aws_client, aws_session
from forwarder.inputs.aws_s3_config import AwsS3Config
from forwarder.inputs.aws_s3_errors import credential_problem
from forwarder.inputs.aws_s3_events import ObjectContext, build_event
from forwarder.inputs.aws_s3_objects import Bucket, DownloadError, ObjectReader
from forwarder.inputs.base import InputContext, PermanentInputError

READING, DONE, FAILED = "reading", "done", "failed"
LISTING_COUNTERS = ("listings", "listing_errors", "objects_listed", "objects_tracked", "objects_forgotten",
                    "download_retries")
RETRY_INITIAL = 1.0
RETRY_MAXIMUM = 60.0
OBJECT_ATTEMPTS = 5


@dataclass
class ObjectState:
    etag: str
    size: int
    last_modified: float
    offset: int = 0
    status: str = READING

    def cursor(self) -> dict[str, Any]:
        return {"etag": self.etag, "size": self.size, "last_modified": self.last_modified, "offset": self.offset,
                "status": self.status}

    @classmethod
    def from_cursor(cls, value: Any) -> ObjectState | None:
        try:
            return cls(str(value["etag"]), int(value["size"]), float(value["last_modified"]), int(value["offset"]),
                       str(value["status"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class ListedObject:
    key: str
    etag: str
    size: int
    last_modified: float


class BucketListingInput:
    def __init__(self, config: AwsS3Config, context: InputContext) -> None:
        self._config = config
        self._context = context
        self._log = context.log
        self._bucket = Bucket.from_config(config)
        self._name = f"aws-s3 {context.input_id}"
        self._states: dict[str, ObjectState] = {}
        for counter in LISTING_COUNTERS:
            context.stats.extra.setdefault(counter, 0)

    def run(self) -> None:
        config = self._config
        self._session = session = aws_session(config)
        self._s3 = aws_client(session, "s3", config, pool_size=config.number_of_workers + 1)
        self._reader = ObjectReader(self._s3, self._bucket, self._log, self._context.stats, self._name)
        self._states = self._committed_states()
        self._context.stats.state = "running"
        stop = self._context.stop
        backoff = Backoff(RETRY_INITIAL, min(RETRY_MAXIMUM, config.bucket_list_interval))
        with concurrent.futures.ThreadPoolExecutor(config.number_of_workers, "aws-s3-object") as workers:
            while not stop.is_set():
                started = time.monotonic()
                if self._poll(workers, backoff):
                    backoff.reset()
                    stop.wait(max(0.0, config.bucket_list_interval - (time.monotonic() - started)))

    def _source(self, key: str) -> str:
        return f"{self._bucket.name}/{key}"

    def _committed_states(self) -> dict[str, ObjectState]:
        prefix = self._source("")
        states = {}
        for source, value in self._context.client.committed().items():
            state = ObjectState.from_cursor(value) if source.startswith(prefix) else None
            if state is not None:
                states[source[len(prefix):]] = state
        return states

    def _poll(self, workers: concurrent.futures.Executor, backoff: Backoff) -> bool:
        """One listing and the reads it calls for; False when the listing failed (after waiting `backoff`)."""
        where = f"s3://{self._bucket.name}/{self._config.bucket_list_prefix}"
        try:
            listed = self._list()
        except (BotoCoreError, ClientError) as error:
            self._count("listing_errors")
            problem = credential_problem(error, f"list {where}", self._key_description(), listing=True)
            if problem:
                raise PermanentInputError(problem) from None
            delay = backoff.next_delay()
            message = f"cannot list {where}: {error}"
            self._log.warning("%s: %s; trying again in %.1fs", self._name, message, delay)
            self._context.stats.error(message)
            self._context.stop.wait(delay)
            return False
        except _Stopping:
            return True
        self._count("listings")
        self._context.stats.extra["objects_listed"] = len(listed)
        pending = self._reconcile(listed)
        futures = [workers.submit(self._read, key, state) for key, state in pending]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return True

    def _key_description(self) -> str:
        """The access key id in use, for messages (the secret never is)."""
        key_id = self._config.access_key_id
        if not key_id:
            credentials = self._session.get_credentials()
            key_id = credentials.access_key if credentials is not None else None
        return f"access key id {key_id}" if key_id else "the AWS credentials in use"

    def _list(self) -> dict[str, ListedObject]:
        listed = {}
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket.name, Prefix=self._config.bucket_list_prefix):
            if self._context.stop.is_set():
                raise _Stopping()
            for item in page.get("Contents", []):
                key = item["Key"]
                listed[key] = ListedObject(key, item.get("ETag", "").strip('"'), int(item.get("Size", 0)),
                                           item["LastModified"].timestamp())
        return listed

    def _reconcile(self, listed: dict[str, ListedObject]) -> list[tuple[str, ObjectState]]:
        """The objects to read now; states of objects gone or too old are removed from memory and registry."""
        now = time.time()
        forget = [key for key in self._states if key not in listed]
        pending = []
        for key, item in sorted(listed.items()):
            if not self._wanted(item, now):
                if key in self._states:
                    forget.append(key)
                continue
            state = self._states.get(key)
            if state is not None and state.etag == item.etag and state.status != READING:
                continue
            if state is None or state.etag != item.etag:
                state = ObjectState(item.etag, item.size, item.last_modified)
                self._states[key] = state
            pending.append((key, state))
        if forget:
            for key in forget:
                del self._states[key]
            self._count("objects_forgotten", len(forget))
            self._context.client.commit({self._source(key): None for key in forget})
        self._context.stats.extra["objects_tracked"] = len(self._states)
        return pending

    def _wanted(self, item: ListedObject, now: float) -> bool:
        config = self._config
        if config.start_timestamp is not None and item.last_modified < config.start_timestamp:
            return False
        return not (config.ignore_older and now - item.last_modified > config.ignore_older)

    def _read(self, key: str, state: ObjectState) -> None:
        """Reads one object from its state's offset; runs on a worker thread."""
        source = self._source(key)
        client = self._context.client
        stop = self._context.stop

        def emit(context: ObjectContext, payloads: list[Any], next_offset: int) -> bool:
            state.offset = next_offset
            return not stop.is_set() and client.publish_raw(build_event, context, payloads, {source: state.cursor()})

        if stop.is_set():
            return
        options = self._config.reader_options(key)
        backoff = Backoff(RETRY_INITIAL, RETRY_MAXIMUM)
        attempt = 1
        while True:
            try:
                result = self._reader.read(key, options, state.offset, emit)
                break
            except DownloadError as error:
                problem = credential_problem(error.error, f"download s3://{self._bucket.name}/{key}",
                                             self._key_description(), listing=False)
                if problem:
                    raise PermanentInputError(problem) from None
                self._context.stats.error(str(error))
                if attempt >= OBJECT_ATTEMPTS:
                    self._log.warning("%s: %s; gave up after %d attempts, trying again at the next listing",
                                      self._name, error, attempt)
                    return
                delay = backoff.next_delay()
                self._log.warning("%s: %s; trying again in %.1fs (attempt %d of %d)", self._name, error, delay,
                                  attempt + 1, OBJECT_ATTEMPTS)
                self._count("download_retries")
                attempt += 1
                if stop.wait(delay):
                    return
        if not result.complete:
            return
        state.status = FAILED if result.failure else DONE
        client.commit({source: state.cursor()})

    def _count(self, counter: str, amount: int = 1) -> None:
        self._context.stats.extra[counter] += amount


class _Stopping(Exception):
    pass
