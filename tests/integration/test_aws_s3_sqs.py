"""aws-s3 in SQS mode through the real forwarder process, against moto's S3, SQS and SNS with real boto3.

Notifications are the ones moto's S3 sends itself when an object is put
(direct, or through a real SNS topic subscribed to the queue), plus
EventBridge-shaped and malformed bodies sent to the queue as a rule would.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.lumberjack_server import Behaviour, LumberjackServer
from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

BUCKET = "umbrella-logs"


@pytest.fixture(scope="module")
def aws():
    with MotoServer() as server:
        yield server


@pytest.fixture
def queue(aws):
    """A fresh bucket and queue; the bucket notifies the queue of created objects directly."""
    aws.reset()
    s3, sqs = aws.client("s3"), aws.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName="umbrella-notifications")["QueueUrl"]
    return queue_url


def queue_arn(aws, queue_url: str) -> str:
    return aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]


def notify_queue_directly(aws, queue_url: str) -> None:
    aws.client("s3").put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn(aws, queue_url), "Events": ["s3:ObjectCreated:*"]}]})


def queue_counts(aws, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def csv_lines(log_type: str, count: int) -> list[str]:
    return [f'"2024-06-10 00:{n // 60:02d}:{n % 60:02d}","{log_type}-{n}","10.0.0.{n % 250}","Allowed"'
            for n in range(count)]


def put_lines(aws, key: str, lines: list[str], compress: bool = True) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(data) if compress else data)


def input_config(aws, queue_url: str, extra: str = "") -> str:
    return f"""
        forwarder.inputs:
          - type: aws-s3
            id: umbrella-sqs
            queue_url: "{queue_url}"
            endpoint: "{aws.endpoint}"
            path_style: true
            region: {REGION}
            access_key_id: {ACCESS_KEY_ID}
            secret_access_key: "{SECRET_ACCESS_KEY}"
            sqs.wait_time: 1s
            api_timeout: 10s
            number_of_workers: 3
            sqs.shutdown_grace_time: 1s
{extra}
        queue.mem.flush.timeout: 10ms
        forwarder.registry.flush: 0s
        logging.metrics.enabled: false
        """


def to_file(aws, queue_url: str, extra: str = "") -> str:
    return input_config(aws, queue_url, extra) + """
        output.file:
          path: ${path.data}/events
        """


def to_logstash(aws, queue_url: str, address: str, extra: str = "") -> str:
    return input_config(aws, queue_url, extra) + f"""
        output.logstash:
          hosts: ["{address}"]
          timeout: 30s
          backoff.init: 0.2s
          backoff.max: 1s
        """


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def input_stats(http_port: int) -> dict:
    """The aws-s3 input's entry of /stats, counters at the top level as /stats shows them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats", timeout=5) as response:
        return json.loads(response.read())["inputs"]["umbrella-sqs"]


def messages_of(events: list[dict]) -> Counter:
    return Counter(event["message"] for event in events)


def test_direct_notifications_are_read_and_their_messages_deleted(tmp_path: Path, aws, queue) -> None:
    notify_queue_directly(aws, queue)  # moto sends an s3:TestEvent first, as S3 does
    dns = csv_lines("dnslogs", 120)
    proxy = csv_lines("proxylogs", 30)
    put_lines(aws, "umbrella/dnslogs/2024-06-10/2024-06-10-00-10-a1b2.csv.gz", dns)
    put_lines(aws, "umbrella/proxy logs/2024-06-10/2024-06-10-00-10-c+d=.csv", proxy, compress=False)
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, to_file(aws, queue)).start()
    try:
        wait_until(lambda: len(output_events(home)) >= 150, 60, "150 events")
        wait_until(lambda: queue_counts(aws, queue) == (0, 0), 30, "every message deleted")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert messages_of(events) == Counter(dns + proxy)
    proxy_event = next(event for event in events if event["message"] == proxy[3])
    key = "umbrella/proxy logs/2024-06-10/2024-06-10-00-10-c+d=.csv"
    assert proxy_event["aws"]["s3"] == {"bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                                        "object": {"key": key}}
    assert proxy_event["log"]["file"]["path"] == f"{aws.endpoint}/{BUCKET}/{key}"
    assert proxy_event["cloud"] == {"provider": "aws", "region": REGION}
    assert len({event["@metadata"]["_id"] for event in events}) == 150


def test_sns_wrapped_notifications_are_read(tmp_path: Path, aws, queue) -> None:
    sns = aws.client("sns")
    topic = sns.create_topic(Name="umbrella-objects")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(aws, queue))  # raw message delivery off
    aws.client("s3").put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})
    lines = csv_lines("iplogs", 40)
    put_lines(aws, "umbrella/iplogs/2024-06-10/2024-06-10-00-20-e5f6.csv.gz", lines)
    body = json.loads(aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                        VisibilityTimeout=0)["Messages"][0]["Body"])
    assert body["Type"] == "Notification" and body["TopicArn"] == topic  # what the forwarder will receive
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, to_file(aws, queue)).start()
    try:
        wait_until(lambda: len(output_events(home)) >= 40, 60, "40 events")
        wait_until(lambda: queue_counts(aws, queue) == (0, 0), 30, "every message deleted")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert messages_of(output_events(home)) == Counter(lines)


def test_eventbridge_events_test_events_and_unknown_bodies(tmp_path: Path, aws, queue) -> None:
    sqs = aws.client("sqs")
    key = "umbrella/auditlogs/2024-06-10/2024-06-10-00-30-g7h8.csv.gz"
    lines = csv_lines("auditlogs", 25)
    put_lines(aws, key, lines)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2024-06-10T00:30:12Z", "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {"version": "0", "bucket": {"name": BUCKET}, "object": {"key": key, "size": 1, "etag": "x"},
                   "reason": "PutObject"}}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-06-10T00:00:00.000Z", "Bucket": BUCKET}))
    unknown = sqs.send_message(QueueUrl=queue, MessageBody='{"hello": "not a notification"}')["MessageId"]
    home = tmp_path / "home"
    http_port = free_port()
    forwarder = ForwarderProcess(home, to_file(aws, queue, extra="""
            visibility_timeout: 2s
""") + f"""
        http.enabled: true
        http.host: 127.0.0.1
        http.port: {http_port}
        """).start()
    try:
        wait_until(lambda: len(output_events(home)) >= 25, 60, "25 events")
        counters = wait_until(lambda: (lambda stats: stats if stats["sqs_messages_deleted"] == 2 else None)(
            input_stats(http_port)), 30, "two messages deleted in /stats")
        assert counters["sqs_test_events"] == 1 and counters["sqs_objects_read"] == 1
        assert counters["sqs_messages_invalid"] >= 1
        warning = forwarder.wait_for_log(f"SQS message {unknown} is not an S3 notification")
        assert warning["log.level"] == "WARNING"
        # The unknown message is never deleted: it comes back after its visibility timeout, without a new warning.
        wait_until(lambda: queue_counts(aws, queue) == (1, 0) or None, 30, "the unknown message visible again")
        wait_until(lambda: queue_counts(aws, queue) == (0, 1) or None, 30, "the unknown message received again")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert messages_of(output_events(home)) == Counter(lines)
    warnings = [line for line in forwarder.log_lines() if unknown in line.get("message", "")]
    assert len(warnings) == 1, warnings


def test_a_message_received_too_often_is_left_to_the_redrive_policy(tmp_path: Path, aws, queue) -> None:
    sqs = aws.client("sqs")
    key = "umbrella/dnslogs/2024-06-10/2024-06-10-00-40-poison.csv.gz"
    put_lines(aws, key, csv_lines("dnslogs", 3))
    notification = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                                 "eventName": "ObjectCreated:Put",
                                 "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}}}]}
    poison = sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))["MessageId"]
    for _ in range(3):  # three earlier consumers gave up on it
        assert sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"][0]["MessageId"] == poison
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, to_file(aws, queue, extra="""
            sqs.max_receive_count: 3
""")).start()
    try:
        forwarder.wait_for_log(f"SQS message {poison} was received 4 times (sqs.max_receive_count 3)")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert output_events(home) == []
    assert sum(queue_counts(aws, queue)) == 1, "the message is not deleted"


def test_slow_receiver_extends_visibility_and_the_message_is_deleted_only_after_the_ack(
        tmp_path: Path, aws, queue) -> None:
    notify_queue_directly(aws, queue)
    lines = csv_lines("dnslogs", 60)
    put_lines(aws, "umbrella/dnslogs/2024-06-10/2024-06-10-00-50-slow.csv.gz", lines)
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, to_logstash(aws, queue, server.address, extra="""
            visibility_timeout: 4s
""")).start()
        try:
            server.wait_for_events(60, timeout=60)
            wait_until(lambda: queue_counts(aws, queue) == (0, 1) or None, 30, "the message in flight")
            # Two and a half visibility timeouts pass while Logstash holds the ACK: the message stays hidden.
            for _ in range(5):
                held.wait(2.0)
                assert queue_counts(aws, queue) == (0, 1)
            held.set()
            wait_until(lambda: queue_counts(aws, queue) == (0, 0), 30, "the message deleted after the ACK")
            assert forwarder.terminate() == 0
        finally:
            held.set()
            forwarder.stop()
        assert messages_of(server.events) == Counter(lines), "every line once: no redelivery"


def test_sigkill_before_the_ack_brings_the_message_back_and_nothing_is_lost(tmp_path: Path, aws, queue) -> None:
    notify_queue_directly(aws, queue)
    keys = [f"umbrella/dnslogs/2024-06-10/2024-06-10-01-{minute:02d}-k{minute}.csv.gz" for minute in range(4)]
    lines = {key: csv_lines(f"dnslogs{index}", 50) for index, key in enumerate(keys)}
    for key in keys:
        put_lines(aws, key, lines[key])
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, to_logstash(aws, queue, server.address, extra="""
            visibility_timeout: 3s
""")).start()
        try:
            server.wait_for_events(50, timeout=60)  # not acknowledged
            forwarder.kill_hard()
            # The test event had nothing to deliver and is gone; no object's message is deleted without an ACK.
            assert sum(queue_counts(aws, queue)) == 4
            server.behaviour = Behaviour()
            held.set()
            forwarder.start()
            expected = Counter(line for key in keys for line in lines[key])
            wait_until(lambda: set(messages_of(server.events)) == set(expected), 60, "every line")
            wait_until(lambda: queue_counts(aws, queue) == (0, 0), 30, "every message deleted")
            assert forwarder.terminate() == 0
        finally:
            held.set()
            forwarder.stop()
        delivered = messages_of(server.events)
        assert set(delivered) == set(expected)
        assert all(count <= 2 for count in delivered.values()), "at most one replay per line"


def test_stopping_before_the_ack_hands_the_message_back_at_once(tmp_path: Path, aws, queue) -> None:
    notify_queue_directly(aws, queue)
    lines = csv_lines("dnslogs", 20)
    put_lines(aws, "umbrella/dnslogs/2024-06-10/2024-06-10-02-00-stop.csv.gz", lines)
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        home = tmp_path / "home"
        # visibility 300s; the stop waits 1 s, not the default 5 s, for the acknowledgements Logstash holds
        forwarder = ForwarderProcess(home, to_logstash(aws, queue, server.address) + """
        forwarder.shutdown_timeout: 1s
        """).start()
        try:
            server.wait_for_events(20, timeout=60)
            assert forwarder.terminate() == 0
        finally:
            held.set()
            forwarder.stop()
    # Not acknowledged within sqs.shutdown_grace_time: visible again now, not after visibility_timeout.
    assert queue_counts(aws, queue) == (1, 0)


def test_a_queue_that_does_not_exist_parks_the_input_with_one_line(tmp_path: Path, aws, queue) -> None:
    missing = queue.rsplit("/", 1)[0] + "/no-such-queue"
    forwarder = ForwarderProcess(tmp_path / "home", to_file(aws, missing)).start()
    try:
        line = forwarder.wait_for_log("input umbrella-sqs parked")
        assert f"cannot receive from {missing}: the queue does not exist" in line["message"]
        assert "check queue_url and region" in line["message"]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert not [entry for entry in forwarder.log_lines() if "Traceback" in json.dumps(entry)]


def test_an_object_that_cannot_be_read_keeps_its_message_until_the_redrive_policy_takes_it(
        tmp_path: Path, aws, queue) -> None:
    sqs = aws.client("sqs")
    missing = "umbrella/dnslogs/2024-06-10/2024-06-10-03-00-gone.csv.gz"
    notification = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                                 "eventName": "ObjectCreated:Put",
                                 "s3": {"bucket": {"name": BUCKET}, "object": {"key": missing, "size": 10}}}]}
    message_id = sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))["MessageId"]
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, to_file(aws, queue, extra="""
            visibility_timeout: 1s
            sqs.max_receive_count: 2
""")).start()
    try:
        forwarder.wait_for_log(f"SQS message {message_id} was received 3 times (sqs.max_receive_count 2)")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    failures = [line["message"] for line in forwarder.log_lines()
                if f"SQS message {message_id} failed" in line.get("message", "")]
    assert len(failures) == 2 and f"s3://{BUCKET}/{missing}" in failures[0], failures
    assert sum(queue_counts(aws, queue)) == 1, "never deleted: the redrive policy decides"
