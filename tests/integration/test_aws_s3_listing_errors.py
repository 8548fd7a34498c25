"""aws-s3 listing mode when S3 says no: refused credentials park the input with one line, transient errors retry soon.

Credentials are checked by a moto server started with INITIAL_NO_AUTH_ACTION_COUNT (its IAM enforcement:
the first requests, which set up the bucket, the user and its key, run unchecked; every later one is
authenticated and authorized as AWS does). It runs as a child process, since moto reads the setting once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
BUCKET = "umbrella-bucket"
UNCHECKED_SETUP_REQUESTS = 3  # create_bucket, create_user, create_access_key
MOTO_CHILD = """\
import sys
from tests.fakes.moto_server import MotoServer
with MotoServer() as aws:
    print(aws.endpoint, flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def enforcing_moto():
    """(endpoint, access key id, secret) of a moto that checks keys, with a bucket and a user without policies."""
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(UNCHECKED_SETUP_REQUESTS)}
    process = subprocess.Popen([sys.executable, "-c", MOTO_CHILD], cwd=REPO, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        endpoint = process.stdout.readline().strip()
        assert endpoint, "moto did not start"
        server = MotoServer()
        server.endpoint = endpoint
        server.client("s3").create_bucket(Bucket=BUCKET)
        iam = server.client("iam")
        iam.create_user(UserName="umbrella-reader")
        key = iam.create_access_key(UserName="umbrella-reader")["AccessKey"]
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            server.client("s3").list_objects_v2(Bucket=BUCKET)  # the setup requests are used up: keys are checked
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        process.stdin.close()
        process.wait(30)


def listing_forwarder(home: Path, endpoint: str, key_id: str, secret: str, interval: str = "1s") -> ForwarderProcess:
    return ForwarderProcess(home, f"""
        forwarder.inputs:
          - type: aws-s3
            id: umbrella
            non_aws_bucket_name: {BUCKET}
            bucket_list_interval: {interval}
            endpoint: {endpoint}
            path_style: true
            region: {REGION}
            access_key_id: {key_id}
            secret_access_key: "{secret}"
        queue.mem.flush.timeout: 10ms
        output.file.path: ${{path.data}}/events
        logging.metrics.enabled: false
        """).start()


@pytest.mark.parametrize(("credentials", "expected"), [
    ("unknown", "S3 does not know access key id AKIAUNKNOWNUMBRELLA01 (InvalidAccessKeyId)"),
    ("wrong secret", "the secret does not match access key id {key_id} (SignatureDoesNotMatch)"),
    ("no policy", "access key id {key_id} may not list this bucket (AccessDenied)"),
])
def test_refused_credentials_park_the_input_with_one_line_naming_the_key(tmp_path, enforcing_moto, credentials,
                                                                        expected):
    endpoint, key_id, secret = enforcing_moto
    used_key, used_secret = {"unknown": ("AKIAUNKNOWNUMBRELLA01", "Not/The+Real-Secret"),
                             "wrong secret": (key_id, "Not/The+Real-Secret"),
                             "no policy": (key_id, secret)}[credentials]
    forwarder = listing_forwarder(tmp_path, endpoint, used_key, used_secret)
    try:
        parked = forwarder.wait_for_log("input umbrella parked")
        assert forwarder.alive(), "a refused key parks the input, it does not stop the forwarder"
    finally:
        forwarder.terminate()
    message = parked["message"]
    assert f"cannot list s3://{BUCKET}/: " + expected.format(key_id=key_id) in message
    assert "\n" not in message
    log = forwarder.log_path.read_text()
    assert used_secret not in log and "Traceback" not in log
    assert log.count("parked") == 1, "not retried every second"


def test_a_failed_listing_is_retried_within_seconds_not_at_the_next_interval(tmp_path):
    with MotoServer() as aws:
        aws.reset()
        s3 = aws.client("s3")
        forwarder = listing_forwarder(tmp_path, aws.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY, interval="10m")
        try:
            forwarder.wait_for_log("cannot list s3://umbrella-bucket/")  # NoSuchBucket: transient here
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="dnslogs/2024-06-10/2024-06-10-10-00-a1b2.csv", Body=b'"row"\n')
            events = wait_until(lambda: output_events(tmp_path), 60, "the object read after the bucket came back")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert [event["message"] for event in events] == ['"row"']
    retries = [line["message"] for line in forwarder.log_lines() if "cannot list" in line.get("message", "")]
    assert retries and all("trying again in" in message for message in retries)
