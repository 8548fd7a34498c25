"""SQS message bodies as S3, SNS and EventBridge deliver them → the objects to read."""

from __future__ import annotations

import json

import pytest

from forwarder.inputs.aws_s3_notifications import NotificationError, ObjectReference, parse_notification

KEY = "umbrella/dnslogs/2024-06-10/2024-06-10-00-10-a1b2.csv.gz"


def s3_record(key: str, event_name: str = "ObjectCreated:Put", bucket: str = "umbrella-logs") -> dict:
    """One record as S3 writes it (event notification structure, version 2.1)."""
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2024-06-10T00:10:12.345Z", "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "umbrella-to-sqs",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "sequencer": "0055AED6DCD90281E5"}},
    }


def sns_envelope(message: str) -> str:
    """An SNS delivery to SQS with raw message delivery off."""
    return json.dumps({
        "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:umbrella-logs", "Subject": "Amazon S3 Notification",
        "Message": message, "Timestamp": "2024-06-10T00:10:12.512Z", "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..", "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    })


def eventbridge_event(key: str, detail_type: str = "Object Created") -> dict:
    return {
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": detail_type,
        "source": "aws.s3", "account": "123456789012", "time": "2024-06-10T00:10:12Z", "region": "eu-west-1",
        "resources": ["arn:aws:s3:::umbrella-logs"],
        "detail": {"version": "0", "bucket": {"name": "umbrella-logs"},
                   "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                              "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                   "source-ip-address": "1.2.3.4", "reason": "PutObject"},
    }


TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-06-10T00:00:00.000Z",
              "Bucket": "umbrella-logs", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e"}


def test_direct_notification_names_each_created_object_with_its_url_encoded_key_decoded():
    body = json.dumps({"Records": [s3_record(KEY), s3_record("umbrella/audit+logs/a%2Bb%3D1.csv.gz",
                                                             "ObjectCreated:CompleteMultipartUpload")]})

    notification = parse_notification(body)

    assert notification.objects == [
        ObjectReference("umbrella-logs", KEY, 1024, "d41d8cd98f00b204e9800998ecf8427e", "eu-west-1"),
        ObjectReference("umbrella-logs", "umbrella/audit logs/a+b=1.csv.gz", 1024,
                        "d41d8cd98f00b204e9800998ecf8427e", "eu-west-1"),
    ]
    assert not notification.test_event
    assert notification.ignored_events == []


def test_other_event_types_are_reported_not_read():
    body = json.dumps({"Records": [s3_record("old.csv.gz", "ObjectRemoved:Delete"), s3_record(KEY)]})

    notification = parse_notification(body)

    assert [reference.key for reference in notification.objects] == [KEY]
    assert notification.ignored_events == ["ObjectRemoved:Delete"]


def test_sns_wrapped_notification_is_unwrapped():
    body = sns_envelope(json.dumps({"Records": [s3_record("umbrella/dnslogs/2024-06-10/x+y.csv.gz")]}))

    notification = parse_notification(body)

    assert notification.envelope == "sns"
    assert [(reference.bucket, reference.key) for reference in notification.objects] == [
        ("umbrella-logs", "umbrella/dnslogs/2024-06-10/x y.csv.gz")]


def test_test_event_direct_and_through_sns_names_nothing():
    for body in (json.dumps(TEST_EVENT), sns_envelope(json.dumps(TEST_EVENT))):
        notification = parse_notification(body)
        assert notification.test_event
        assert notification.objects == []


def test_eventbridge_object_created_key_is_taken_as_is():
    key = "raw/health-check/2023-08-08T14:03:40.532432+1.zip"

    notification = parse_notification(json.dumps(eventbridge_event(key)))

    assert notification.envelope == "eventbridge"
    assert notification.objects == [
        ObjectReference("umbrella-logs", key, 5, "b1946ac92492d2347c6235b4d2611184", "eu-west-1")]


def test_eventbridge_other_detail_types_are_reported_not_read():
    notification = parse_notification(json.dumps(eventbridge_event(KEY, "Object Deleted")))

    assert notification.objects == []
    assert notification.ignored_events == ["Object Deleted"]


@pytest.mark.parametrize(("body", "reason"), [
    ("not json at all", "the message body is not JSON"),
    ('["Records"]', "the message body is not a JSON object"),
    ('{"hello": "world"}', "no Records list"),
    (json.dumps({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT"}]}), "not an S3 event"),
    (json.dumps({"Records": [{**s3_record(KEY), "s3": {"bucket": {"name": "b"}, "object": {}}}]}),
     "no s3.bucket.name or s3.object.key"),
    (sns_envelope("{truncated"), "the SNS Message is not JSON"),
    (json.dumps({**eventbridge_event(KEY), "source": "aws.ec2"}), "not from S3"),
    (json.dumps({**eventbridge_event(KEY), "detail": {"bucket": {"name": "b"}}}), "detail.object.key"),
])
def test_anything_else_is_an_error_that_says_what_is_wrong(body, reason):
    with pytest.raises(NotificationError, match=reason):
        parse_notification(body)
