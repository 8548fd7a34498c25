"""aws-s3 listing mode when S3 says no: refused credentials park the input with one line, transient errors retry soon.

A listing that fails and a download that breaks off are tried again within seconds (backoff with jitter),
the download from the last line it sent, not from the start of the object and not at the next interval.

Credentials are checked by a moto server started with INITIAL_NO_AUTH_ACTION_COUNT (its IAM enforcement:
the first requests, which set up the bucket, the user and its key, run unchecked; every later one is
authenticated and authorized as AWS does). It runs as a child process, since moto reads the setting once.
"""

from __future__ import annotations

import gzip
import http.client
import http.server
import os
import subprocess
import sys
import threading
import urllib.parse
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


class BreakingProxy:
    """An HTTP proxy in front of moto that cuts the body of the first GetObject of `key` in half.

    The response headers promise the whole object, so boto3's stream ends early with an error after the
    first half's lines were read and published: a download that broke off, as a dropped connection does.
    """

    def __init__(self, upstream: str, key: str) -> None:
        target = urllib.parse.urlsplit(upstream)
        proxy = self
        self.cut = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                connection.request("GET", self.path, headers=dict(self.headers))
                response = connection.getresponse()
                body = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.end_headers()
                if urllib.parse.unquote(self.path.split("?")[0]).endswith(key) and not proxy.cut:
                    proxy.cut += 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BreakingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_download_that_breaks_off_is_resumed_at_once_from_the_last_line_sent(tmp_path):
    key = "dnslogs/2024-06-10/2024-06-10-10-00-a1b2.csv.gz"
    rows = [f'"2024-06-10 10:00:00","row {index:05d}"' for index in range(20000)]
    with MotoServer() as aws:
        aws.reset()
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(("\n".join(rows) + "\n").encode()))
        with BreakingProxy(aws.endpoint, key) as proxy:
            forwarder = listing_forwarder(tmp_path, proxy.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY, interval="10m")
            try:
                events = wait_until(lambda: (lambda found: found if len(found) >= len(rows) else None)(
                    output_events(tmp_path)), 60, "every row, within one listing interval")
                assert forwarder.terminate() == 0
            finally:
                forwarder.stop()
        assert proxy.cut == 1
    assert sorted(event["message"] for event in events) == sorted(rows), "each row once: resumed, not restarted"
    retried = [line["message"] for line in forwarder.log_lines() if "broke off" in line.get("message", "")]
    assert len(retried) == 1 and "trying again in" in retried[0] and "(attempt 2 of 5)" in retried[0]
