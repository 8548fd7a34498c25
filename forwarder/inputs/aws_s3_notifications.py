"""The S3 objects an SQS message names, whichever way the bucket's notifications reach the queue.

A bucket can notify a queue directly (S3 event notifications), through an SNS
topic (the S3 notification is the JSON text in the envelope's `Message`), or
through an EventBridge rule (one "Object Created" event per message). The
parser accepts all three and says what else it saw: the test event S3 sends
when a notification is configured (nothing to read; the message can go), and
records of other event types (ObjectRemoved …), which are not data and are
only reported so the site can narrow its notification configuration. Any
other body is a `NotificationError`: the SQS loop warns and leaves the
message to the queue's redrive policy, so nothing is deleted unread.

S3 event notifications URL-encode the key (form encoding: `+` is a space,
`%2B` a plus); EventBridge events carry the key as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

S3_TEST_EVENT = "s3:TestEvent"
EVENTBRIDGE_OBJECT_CREATED = "Object Created"


class NotificationError(ValueError):
    """The body is not a notification this input understands; the message says what is wrong with it."""


@dataclass(frozen=True)
class ObjectReference:
    """One object a notification says was created: where it is, and what S3 said about it."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Notification:
    """What one SQS message body names.

    `objects` to read, in notification order; `test_event` when S3 only checked the
    configuration; `ignored_events` names the records of event types that are not
    object creations (the message is still complete once `objects` are read).
    """

    objects: list[ObjectReference] = field(default_factory=list)
    test_event: bool = False
    ignored_events: list[str] = field(default_factory=list)
    envelope: str = "s3"


def parse_notification(body: str) -> Notification:
    """The objects an SQS message body names; raises NotificationError for anything else."""
    document = _json_object(body, "the message body")
    if document.get("Type") == "Notification" and "TopicArn" in document:
        inner = document.get("Message")
        if not isinstance(inner, str):
            raise NotificationError("an SNS notification without a Message text")
        notification = _parse_s3_document(_json_object(inner, "the SNS Message"))
        return Notification(notification.objects, notification.test_event, notification.ignored_events, "sns")
    if "detail-type" in document:
        return _parse_eventbridge(document)
    return _parse_s3_document(document)


def _parse_s3_document(document: dict[str, Any]) -> Notification:
    if document.get("Event") == S3_TEST_EVENT:
        return Notification(test_event=True)
    records = document.get("Records")
    if not isinstance(records, list):
        raise NotificationError("not an S3 event notification (no Records list)")
    objects: list[ObjectReference] = []
    ignored: list[str] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise NotificationError(f"Records[{index}] is not an object")
        event_name = record.get("eventName")
        if record.get("eventSource") != "aws:s3" or not isinstance(event_name, str):
            raise NotificationError(f"Records[{index}] is not an S3 event (eventSource "
                                    f"{record.get('eventSource')!r})")
        if not event_name.startswith("ObjectCreated:"):
            ignored.append(event_name)
            continue
        objects.append(_s3_record_object(record, index))
    return Notification(objects, ignored_events=ignored)


def _s3_record_object(record: dict[str, Any], index: int) -> ObjectReference:
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    s3_object = s3.get("object") if isinstance(s3, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = s3_object.get("key") if isinstance(s3_object, dict) else None
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        raise NotificationError(f"Records[{index}] has no s3.bucket.name or s3.object.key")
    region = record.get("awsRegion")
    return ObjectReference(name, unquote_plus(key), _size(s3_object.get("size")), _text(s3_object.get("eTag")),
                           region if isinstance(region, str) and region else None)


def _parse_eventbridge(document: dict[str, Any]) -> Notification:
    detail_type = document.get("detail-type")
    detail = document.get("detail")
    if document.get("source") != "aws.s3" or not isinstance(detail, dict):
        raise NotificationError(f"an EventBridge event that is not from S3 (source {document.get('source')!r})")
    if detail_type != EVENTBRIDGE_OBJECT_CREATED:
        return Notification(ignored_events=[str(detail_type)], envelope="eventbridge")
    bucket = detail.get("bucket")
    s3_object = detail.get("object")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = s3_object.get("key") if isinstance(s3_object, dict) else None
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        raise NotificationError("an EventBridge Object Created event without detail.bucket.name or "
                                "detail.object.key")
    region = document.get("region")
    reference = ObjectReference(name, key, _size(s3_object.get("size")), _text(s3_object.get("etag")),
                                region if isinstance(region, str) and region else None)
    return Notification([reference], envelope="eventbridge")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise NotificationError(f"{what} is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise NotificationError(f"{what} is not a JSON object")
    return document


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
