"""SQS mode of the `aws-s3` input: read the objects S3 notifications name, delete each message once delivered.

SQS mode keeps no state of its own (as in Filebeat): the queue is the state.
A message stays in the queue, invisible to other consumers, while its objects
are read and their events travel to the output; it is deleted only when the
pipeline has committed the cursor published with its last event, which
happens only after the output acknowledged that event and every event before
it. Until then a keeper thread extends its visibility, so a slow output never
lets the message reappear and be read twice. If the forwarder dies first, the
message becomes visible again after `visibility_timeout` and is read again
(the events' `_id` lets the receiver drop the replays).

The pipeline reports commits to a listener; each message's cursor is a key of
its own set to None, so nothing stays in the registry. Messages the input
cannot use (not a notification, received more than `sqs.max_receive_count`
times) are never deleted: one warning each, a counter, and the queue's
redrive policy moves them to its dead-letter queue. This module wires the
input (clients, one object reader per bucket, which failures park it); the
loop itself is in aws_s3_sqs_messages.py.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from forwarder.inputs.aws_s3_config import AwsS3Config
from forwarder.inputs.aws_s3_errors import credential_problem
from forwarder.inputs.aws_s3_notifications import ObjectReference
from forwarder.inputs.aws_s3_objects import Bucket, Emit, ObjectReader, ObjectResult
from forwarder.inputs.aws_s3_sqs_messages import SqsNotificationReader, SqsSettings
from forwarder.inputs.base import InputContext

NO_SUCH_QUEUE = frozenset(("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"))


class SqsInput:
    """The aws-s3 input in SQS mode: boto3 clients from the config, one ObjectReader per notified bucket."""

    def __init__(self, config: AwsS3Config, context: InputContext) -> None:
        self.config = config
        self.context = context
        self._readers: dict[str, ObjectReader] = {}
        self._readers_lock = threading.Lock()
        self._s3: Any = None  # the S3 client, made in run() so that creating the input needs no network

    def run(self) -> None:
        from forwarder.inputs.aws_s3_clients import aws_client, aws_session

        config = self.config
        session = aws_session(config)
        connections = config.number_of_workers + 2  # workers, the receiver and the visibility keeper
        self._s3 = aws_client(session, "s3", config, connections)
        sqs = aws_client(session, "sqs", config, connections)
        key = f"access key id {config.access_key_id}" if config.access_key_id else "the AWS credentials in use"
        SqsNotificationReader(SqsSettings.from_config(config), self.context, sqs, self._read_object,
                              lambda error: queue_refusal(error, config.queue_url or "", key)).run()

    def _read_object(self, reference: ObjectReference, emit: Emit) -> ObjectResult:
        with self._readers_lock:
            reader = self._readers.get(reference.bucket)
            if reader is None:
                bucket = Bucket.from_config(self.config, name=reference.bucket)
                if reference.region:  # the bucket's own region, as the notification gives it
                    bucket = replace(bucket, region=reference.region)
                reader = ObjectReader(self._s3, bucket, self.context.log, self.context.stats, self.context.input_id)
                self._readers[reference.bucket] = reader
        return reader.read(reference.key, self.config.reader_options(reference.key), 0, emit)


def queue_refusal(error: BaseException, queue_url: str, key: str) -> str | None:
    """The user's fix when SQS refuses the queue or the credentials; None when retrying may help."""
    code = str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""
    if code in NO_SUCH_QUEUE:
        return f"cannot receive from {queue_url}: the queue does not exist ({code}); check queue_url and region"
    if code == "AccessDenied":
        return (f"cannot receive from {queue_url}: {key} may not use this queue (AccessDenied); grant it "
                "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue, and "
                "s3:GetObject on the buckets it names")
    return credential_problem(error, f"receive from {queue_url}", key, listing=False)
