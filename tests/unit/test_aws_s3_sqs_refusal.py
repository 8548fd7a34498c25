"""Which SQS failures park the aws-s3 input, and the line that says what to fix."""

from __future__ import annotations

from botocore.exceptions import ClientError, EndpointConnectionError

from forwarder.inputs.aws_s3_sqs import queue_refusal

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/umbrella"
KEY = "access key id AKIAEXAMPLE"


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, "ReceiveMessage")


def test_a_missing_queue_names_the_queue_url():
    for code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        problem = queue_refusal(client_error(code), QUEUE, KEY)
        assert problem is not None and QUEUE in problem and "check queue_url and region" in problem


def test_access_denied_names_the_key_and_the_permissions_it_needs():
    problem = queue_refusal(client_error("AccessDenied"), QUEUE, KEY)
    assert problem is not None and KEY in problem
    assert "sqs:ReceiveMessage" in problem and "sqs:ChangeMessageVisibility" in problem


def test_refused_keys_are_credential_problems():
    problem = queue_refusal(client_error("InvalidClientTokenId"), QUEUE, KEY)
    assert problem is not None and KEY in problem and "access_key_id" in problem


def test_transient_failures_are_retried_not_parked():
    assert queue_refusal(client_error("ServiceUnavailable"), QUEUE, KEY) is None
    assert queue_refusal(EndpointConnectionError(endpoint_url=QUEUE), QUEUE, KEY) is None
