"""S3 refusing the credentials becomes one line with the key id and the fix; other failures stay retryable."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from forwarder.inputs.aws_s3_errors import credential_problem

KEY = "access key id AKIAFAKEFORWARDERTEST"


def s3_error(code: str, status: int = 403, operation: str = "ListObjectsV2") -> ClientError:
    """The ClientError botocore raises for an S3 error response (as its parser shapes it)."""
    return ClientError({"Error": {"Code": code, "Message": f"{code} message"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize(("code", "expected"), [
    ("InvalidAccessKeyId", "S3 does not know access key id AKIAFAKEFORWARDERTEST (InvalidAccessKeyId)"),
    ("SignatureDoesNotMatch", "the secret does not match access key id AKIAFAKEFORWARDERTEST"),
    ("ExpiredToken", "session credentials of access key id AKIAFAKEFORWARDERTEST have expired"),
    ("AccessDenied", "access key id AKIAFAKEFORWARDERTEST may not list this bucket (AccessDenied)"),
])
def test_refused_credentials_name_the_key_and_the_fix(code: str, expected: str) -> None:
    problem = credential_problem(s3_error(code), "list s3://bucket/prefix/", KEY, listing=True)
    assert problem is not None
    assert problem.startswith("cannot list s3://bucket/prefix/: ") and expected in problem
    assert "\n" not in problem


def test_access_denied_on_one_object_is_not_the_key_s_fault() -> None:
    assert credential_problem(s3_error("AccessDenied", operation="GetObject"), "download s3://b/k", KEY,
                              listing=False) is None


def test_missing_credentials_say_which_settings_to_set() -> None:
    problem = credential_problem(NoCredentialsError(), "list s3://b/", KEY, listing=True)
    assert problem is not None and "access_key_id / secret_access_key" in problem


@pytest.mark.parametrize("error", [s3_error("SlowDown", 503), s3_error("InternalError", 500),
                                   s3_error("NoSuchKey", 404), EndpointConnectionError(endpoint_url="http://x"),
                                   None])
def test_other_failures_are_left_to_the_retries(error: BaseException | None) -> None:
    assert credential_problem(error, "list s3://b/", KEY, listing=True) is None
