"""The SQS loop of the aws-s3 input: receive, read the named objects, delete once acknowledged.

See aws_s3_sqs.py for what SQS mode promises. This module is the mechanism:
a receiver thread long-polls while a worker is free, one worker thread per
message publishes its objects' events and waits for the commit of the
message's cursor (a key of its own set to None, so the registry keeps
nothing), and a keeper thread extends the visibility of every message in
flight once half of it has passed.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forwarder.inputs.aws_s3_config import AwsS3Config
from forwarder.inputs.aws_s3_events import ObjectContext, build_event
from forwarder.inputs.aws_s3_notifications import NotificationError, ObjectReference, parse_notification
from forwarder.inputs.aws_s3_objects import DownloadError, Emit, ObjectResult
from forwarder.inputs.base import InputContext, PermanentInputError
from forwarder.log_throttle import ThrottledLog

MESSAGE_CURSOR_PREFIX = "sqs-message:"
MAX_MESSAGES_PER_RECEIVE = 10  # SQS's limit for one ReceiveMessage call
WARNED_MESSAGES_REMEMBERED = 10_000

# Reads one object, handing each chunk to emit(context, payloads, next_offset) -> bool (False: stop);
# DownloadError when the object cannot be fetched now. ObjectReader.read for a notification's bucket.
ReadObject = Callable[[ObjectReference, Emit], ObjectResult]


@dataclass(frozen=True)
class SqsSettings:
    """The SQS-mode settings of the aws-s3 input, in seconds where they are durations."""

    queue_url: str
    number_of_workers: int
    visibility_timeout: float
    wait_time: float
    max_receive_count: int  # 0 or less: never give up on a message
    shutdown_grace: float

    @classmethod
    def from_config(cls, config: AwsS3Config) -> SqsSettings:
        return cls(config.queue_url or "", config.number_of_workers, config.visibility_timeout, config.sqs_wait_time,
                   config.sqs_max_receive_count, config.sqs_shutdown_grace_time)


@dataclass
class InFlightMessage:
    """One received message while it is worked on: what deleting and extending it need."""

    message_id: str
    receipt_handle: str
    cursor_key: str
    visible_at: float  # monotonic time at which SQS would hand the message out again
    published_all: bool = False
    acknowledged: threading.Event = field(default_factory=threading.Event)


class AcknowledgedMessages:
    """The pipeline's commit listener: marks messages whose last event's cursor was committed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, InFlightMessage] = {}

    def expect(self, message: InFlightMessage) -> None:
        with self._lock:
            self._waiting[message.cursor_key] = message

    def forget(self, message: InFlightMessage) -> None:
        with self._lock:
            self._waiting.pop(message.cursor_key, None)

    def on_commit(self, cursor: dict[str, Any]) -> None:
        """Runs under the acker's lock: only sets events, never blocks."""
        with self._lock:
            for key in cursor:
                message = self._waiting.pop(key, None)
                if message is not None:
                    message.acknowledged.set()


class SqsNotificationReader:
    """Receives notifications with long polling and works on up to `number_of_workers` messages at once."""

    def __init__(self, settings: SqsSettings, context: InputContext, sqs: Any, read_object: ReadObject,
                 refused: Callable[[BaseException], str | None] = lambda error: None) -> None:
        self.settings = settings
        self.refused = refused
        self.context = context
        self.sqs = sqs
        self.read_object = read_object
        self.acknowledged = AcknowledgedMessages()
        self._run_token = uuid.uuid4().hex[:12]
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._free_workers = threading.Condition(self._lock)
        self._busy = 0
        self._in_flight: dict[str, InFlightMessage] = {}
        self._warned: OrderedDict[str, None] = OrderedDict()
        self._ignored_event_types_warned = False
        self._ended = threading.Event()  # set when run() returns: the receiver and the keeper end with it
        self._refusal: str | None = None
        self._receive_failures = ThrottledLog(context.log)  # an unreachable endpoint: one line a minute
        for name in ("sqs_messages_received", "sqs_messages_deleted", "sqs_messages_invalid",
                     "sqs_messages_over_receive_count", "sqs_messages_failed", "sqs_test_events",
                     "sqs_visibility_extended", "sqs_objects_read", "sqs_ignored_events"):
            context.stats.extra.setdefault(name, 0)

    def run(self) -> None:
        remove_listener = self.context.client.on_commit(self.acknowledged.on_commit)
        keeper = threading.Thread(target=self._keep_visible, name=f"{self.context.input_id}-sqs-visibility",
                                  daemon=True)
        receiver = threading.Thread(target=self._receive_loop, name=f"{self.context.input_id}-sqs-receive",
                                    daemon=True)
        keeper.start()
        receiver.start()
        self.context.log.info("%s: reading S3 notifications from %s with %d worker(s)", self.context.input_id,
                              self.settings.queue_url, self.settings.number_of_workers)
        try:
            while not self.context.stop.wait(0.5):
                if self._refusal is not None:
                    raise PermanentInputError(self._refusal)
            self._wait_for_workers(self.settings.shutdown_grace + 1.0)
        finally:
            self._ended.set()
            remove_listener()

    # ----- receiving ----------------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        """Long-polls while a worker is free; runs on its own thread because a long poll cannot be cut short."""
        stop = self.context.stop
        while not stop.is_set() and not self._ended.is_set():
            with self._free_workers:
                self._free_workers.wait_for(lambda: self._busy < self.settings.number_of_workers or stop.is_set(),
                                            timeout=1.0)
                free = self.settings.number_of_workers - self._busy
            if stop.is_set() or free <= 0:
                continue
            try:
                messages = self._receive(min(free, MAX_MESSAGES_PER_RECEIVE))
            except Exception as error:  # botocore's errors and connection failures: retried after a pause
                refusal = self.refused(error)
                if refusal is not None:
                    self._refusal = refusal  # run() parks the input with it
                    return
                self._receive_failures.report("%s: receiving from %s failed: %s; trying again",
                                              self.context.input_id, self.settings.queue_url, error)
                self.context.stats.error(f"receiving from {self.settings.queue_url} failed: {error}")
                stop.wait(min(self.settings.wait_time, 5.0) or 1.0)
                continue
            self._receive_failures.recovered("%s: receiving from %s again", self.context.input_id,
                                             self.settings.queue_url)
            for message in messages:
                if stop.is_set():
                    self._release(message["ReceiptHandle"], message.get("MessageId", "?"))
                    continue
                self._start_worker(message)

    def _receive(self, count: int) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.settings.queue_url, MaxNumberOfMessages=count,
            WaitTimeSeconds=int(self.settings.wait_time), VisibilityTimeout=int(self.settings.visibility_timeout),
            MessageSystemAttributeNames=["ApproximateReceiveCount"])
        messages = answer.get("Messages", [])
        self._count("sqs_messages_received", len(messages))
        return messages

    def _start_worker(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._busy += 1
        worker = threading.Thread(target=self._work, args=(message,), daemon=True,
                                  name=f"{self.context.input_id}-sqs-{message.get('MessageId', '?')[:8]}")
        worker.start()

    def _work(self, message: dict[str, Any]) -> None:
        message_id = message.get("MessageId", "?")
        try:
            self._handle(message)
        except DownloadError as error:  # S3 may answer next time; the message comes back after its visibility
            self._report_error(f"SQS message {message_id} failed: {error}; it will be received again")
            self._count("sqs_messages_failed")
        except Exception as error:  # one message's failure never stops the others
            self._report_error(f"SQS message {message_id} failed: {type(error).__name__}: {error}; it will be "
                               "received again")
            self._count("sqs_messages_failed")
        finally:
            with self._free_workers:
                self._busy -= 1
                self._free_workers.notify_all()

    # ----- one message --------------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> None:
        message_id = message.get("MessageId", "?")
        receipt_handle = message["ReceiptHandle"]
        receive_count = _receive_count(message)
        if 0 < self.settings.max_receive_count < receive_count:
            self._count("sqs_messages_over_receive_count")
            self._warn_once(message_id, "SQS message %s was received %d times (sqs.max_receive_count %d): not read "
                            "again, left to the queue's redrive policy", message_id, receive_count,
                            self.settings.max_receive_count)
            return
        try:
            notification = parse_notification(message.get("Body", ""))
        except NotificationError as error:
            self._count("sqs_messages_invalid")
            self._warn_once(message_id, "SQS message %s is not an S3 notification this input reads (%s): not "
                            "deleted, left to the queue's redrive policy", message_id, error)
            return
        if notification.ignored_events:
            self._warn_ignored_event_types(notification.ignored_events)
        if notification.test_event:
            self._count("sqs_test_events")
        in_flight = InFlightMessage(message_id, receipt_handle, f"{MESSAGE_CURSOR_PREFIX}{self._run_token}-"
                                    f"{next(self._numbers)}", time.monotonic() + self.settings.visibility_timeout)
        self.acknowledged.expect(in_flight)
        with self._lock:
            self._in_flight[in_flight.cursor_key] = in_flight
        try:
            if not self._publish(notification.objects, in_flight):
                self._release(in_flight.receipt_handle, message_id)
                return
            in_flight.published_all = True
            self._wait_for_acknowledgement(in_flight)
        finally:
            self.acknowledged.forget(in_flight)
            with self._lock:
                self._in_flight.pop(in_flight.cursor_key, None)

    def _wait_for_acknowledgement(self, message: InFlightMessage) -> None:
        """Deletes the message once acknowledged; at stop, waits only `sqs.shutdown_grace_time`, then hands it back."""
        stop = self.context.stop
        while not message.acknowledged.wait(0.5):
            if stop.is_set():
                break
        if stop.is_set() and not message.acknowledged.wait(self.settings.shutdown_grace):
            self._release(message.receipt_handle, message.message_id)
            return
        self._delete(message)

    def _publish(self, objects: list[ObjectReference], message: InFlightMessage) -> bool:
        """Publishes every event of every object; the last one carries the message's cursor. False at stop."""
        client = self.context.client
        stop = self.context.stop
        # The latest chunk (context, payloads), published once the next one (or the end) is known.
        held_back: list[tuple[ObjectContext, list[Any]]] = []

        def emit(context: ObjectContext, payloads: list[Any], _next_offset: int) -> bool:
            if stop.is_set() or (held_back and not client.publish_raw(build_event, *held_back.pop())):
                return False
            held_back.append((context, payloads))
            return True

        for reference in objects:
            if not self.read_object(reference, emit).complete:
                return False
            self._count("sqs_objects_read")
        cursor = {message.cursor_key: None}
        if not held_back:
            client.commit(cursor)
            return True
        return client.publish_raw(build_event, *held_back.pop(), cursor)

    def _delete(self, message: InFlightMessage) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=message.receipt_handle)
        except Exception as error:  # the message comes back after its visibility timeout: read again, not lost
            self._report_error(f"deleting SQS message {message.message_id} failed: {error}; it will be "
                               "received and read again")
            return
        self._count("sqs_messages_deleted")

    # ----- visibility and shutdown --------------------------------------------------------------------

    def _keep_visible(self) -> None:
        """Extends every in-flight message's visibility once half of it has passed."""
        timeout = self.settings.visibility_timeout
        while not self.context.stop.wait(min(timeout / 4, 5.0)) and not self._ended.is_set():
            now = time.monotonic()
            with self._lock:
                due = [message for message in self._in_flight.values() if message.visible_at - now < timeout / 2]
            for message in due:
                try:
                    self.sqs.change_message_visibility(QueueUrl=self.settings.queue_url,
                                                       ReceiptHandle=message.receipt_handle,
                                                       VisibilityTimeout=int(timeout))
                except Exception as error:  # it may be read twice: duplicates, never a loss
                    with self._lock:
                        if message.cursor_key not in self._in_flight:
                            continue  # deleted meanwhile: its receipt handle is no longer valid
                    self._report_error(f"extending the visibility of SQS message {message.message_id} failed: "
                                       f"{error}")
                    continue
                message.visible_at = time.monotonic() + timeout
                self._count("sqs_visibility_extended")

    def _wait_for_workers(self, timeout: float) -> None:
        with self._free_workers:
            self._free_workers.wait_for(lambda: self._busy == 0, timeout)

    def _release(self, receipt_handle: str, message_id: str) -> None:
        """Makes a message visible again now, so the next start (or another consumer) reads it at once."""
        try:
            self.sqs.change_message_visibility(QueueUrl=self.settings.queue_url, ReceiptHandle=receipt_handle,
                                               VisibilityTimeout=0)
        except Exception as error:  # it reappears after visibility_timeout instead
            self.context.log.debug("%s: releasing SQS message %s failed: %s", self.context.input_id, message_id,
                                   error)

    # ----- reporting ----------------------------------------------------------------------------------

    def _warn_once(self, message_id: str, text: str, *args: Any) -> None:
        with self._lock:
            if message_id in self._warned:
                return
            self._warned[message_id] = None
            if len(self._warned) > WARNED_MESSAGES_REMEMBERED:
                self._warned.popitem(last=False)
        self.context.log.warning("%s: " + text, self.context.input_id, *args)

    def _warn_ignored_event_types(self, event_types: list[str]) -> None:
        self._count("sqs_ignored_events", len(event_types))
        if self._ignored_event_types_warned:
            return
        self._ignored_event_types_warned = True
        self.context.log.warning("%s: the queue receives S3 notifications of type %s, which this input does not "
                                 "read (only object creations); configure the bucket's notifications for "
                                 "ObjectCreated events only", self.context.input_id, ", ".join(sorted(event_types)))

    def _report_error(self, text: str) -> None:
        self.context.log.warning("%s: %s", self.context.input_id, text)
        self.context.stats.error(text)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            extra = self.context.stats.extra
            extra[name] = extra.get(name, 0) + amount


def _receive_count(message: dict[str, Any]) -> int:
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    except ValueError:
        return 1
