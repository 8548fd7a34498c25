"""Reading S3 objects through the real forwarder, against moto: event shape and objects that cannot be read."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import urllib.request

from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

BUCKET = "umbrella-export"
PREFIX = "123_abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.loads(response.read())


def forwarder_config(endpoint: str, http_port: int, extra: str = "") -> str:
    return f"""
        forwarder.inputs:
          - type: aws-s3
            id: umbrella
            non_aws_bucket_name: {BUCKET}
            bucket_list_prefix: {PREFIX}/
            bucket_list_interval: 1s
            endpoint: {endpoint}
            path_style: true
            region: {REGION}
            access_key_id: {ACCESS_KEY_ID}
            secret_access_key: {SECRET_ACCESS_KEY}
            max_bytes: 4KiB
{extra}
        queue.mem.flush.timeout: 10ms
        forwarder.registry.flush: 0s
        output.file.path: ${{path.data}}/events
        http.enabled: true
        http.host: 127.0.0.1
        http.port: {http_port}
        logging.metrics.enabled: false
        """


def test_events_carry_filebeat_fields_and_bad_objects_fail_alone(tmp_path):
    http_port = free_port()
    with MotoServer() as aws:
        aws.reset()  # moto keeps its buckets per process, across servers
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        good_key = f"{PREFIX}/dnslogs/2024-06-10/2024-06-10-00-00-a1b2.csv.gz"
        s3.put_object(Bucket=BUCKET, Key=good_key, Body=gzip.compress(b'"row 0"\r\n"row 1"\n\n"row 2"'))
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/plain.csv", Body=b'"plain 0"\n"plain 1"\n')
        corrupt = gzip.compress(b'"partial"\n' * 100)
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/corrupt.csv.gz",
                      Body=corrupt[:10] + b"\xff" * 20 + corrupt[30:])
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/truncated.csv.gz", Body=corrupt[:-12])
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/empty.csv.gz", Body=b"")
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/long.csv",
                      Body=b'"before"\n' + b"x" * 5000 + b'\n"after"\n')
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dnslogs/2024-06-10/latin1.csv",
                      Body='"caf\u00e9"\n"ok"\n'.encode("latin-1"))
        forwarder = ForwarderProcess(tmp_path, forwarder_config(aws.endpoint, http_port)).start()
        try:
            expected_messages = {'"row 0"', '"row 1"', '"row 2"', '"plain 0"', '"plain 1"', '"before"',
                                 '"caf\ufffd"', '"ok"'}
            wait_until(lambda: {e["message"] for e in output_events(tmp_path)} >= expected_messages, 30,
                       "every readable line")
            stats = wait_until(lambda: (lambda s: s if s["objects_failed"] == 4 else None)(
                get_stats(http_port)["inputs"]["umbrella"]), 30, "four failed objects in /stats")
            assert stats["objects_invalid_gzip"] == 2
            assert stats["objects_empty"] == 1
            assert stats["objects_line_too_long"] == 1
            assert stats["lines_invalid_utf8"] == 1
            assert stats["objects_read"] == 3
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    events = output_events(tmp_path)
    messages = [e["message"] for e in events]
    partial = [e for e in events if e["message"] == '"partial"']
    assert {e["aws"]["s3"]["object"]["key"].rsplit("/", 1)[1] for e in partial} == {"truncated.csv.gz"}
    assert 0 < len(partial) < 100, "the lines before the truncation are sent, then the object fails"
    assert sorted(m for m in messages if m != '"partial"') == sorted(expected_messages), "nothing twice"
    row1 = next(e for e in events if e["message"] == '"row 1"')
    assert row1["log"] == {"file": {"path": f"{aws.endpoint}/{BUCKET}/{good_key}"}, "offset": 9}
    assert row1["aws"]["s3"] == {"bucket": {"name": BUCKET, "arn": BUCKET}, "object": {"key": good_key}}
    assert row1["cloud"] == {"provider": "aws", "region": REGION}
    digest = hashlib.sha256((BUCKET + good_key).encode()).hexdigest()[:10]
    assert row1["@metadata"]["_id"] == f"{digest}-000000000009"
    assert next(e for e in events if e["message"] == '"row 2"')["log"]["offset"] == 18
    log = forwarder.log_path.read_text()
    for name, reason in (("corrupt.csv.gz", "not a valid gzip"), ("truncated.csv.gz", "truncated gzip"),
                         ("empty.csv.gz", "empty"), ("long.csv", "longer than max_bytes")):
        lines = [line for line in log.splitlines() if name in line and reason in line]
        assert len(lines) == 1, (name, lines)
    assert len([line for line in log.splitlines() if "latin1.csv" in line and "not valid UTF-8" in line]) == 1
    assert "Traceback" not in log and SECRET_ACCESS_KEY not in log


def test_unknown_keys_and_bucket_choice_are_config_errors(tmp_path):
    import subprocess
    import sys

    def check(extra: str) -> subprocess.CompletedProcess:
        config = tmp_path / "forwarder.yml"
        config.write_text(f"""
forwarder.inputs:
  - type: aws-s3
{extra}
output.file.path: {tmp_path}/events
""")
        config.chmod(0o600)
        return subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "-c", str(config)],
                              capture_output=True, text=True, timeout=60, check=False)

    typo = check("    bucket_arn: arn:aws:s3:::b\n    bucket_list_intervall: 1s\n")
    assert typo.returncode == 1 and "bucket_list_intervall" in typo.stderr and "bucket_list_interval" in typo.stderr
    both = check("    bucket_arn: arn:aws:s3:::b\n    queue_url: https://sqs.us-east-1.amazonaws.com/1/q\n")
    assert both.returncode == 1 and "exactly one of bucket_arn, non_aws_bucket_name or queue_url" in both.stderr
    neither = check("    bucket_list_prefix: x/\n")
    assert neither.returncode == 1 and "exactly one of" in neither.stderr
    bad_arn = check("    bucket_arn: umbrella\n")
    assert bad_arn.returncode == 1 and "arn:aws:s3:::BUCKET-NAME" in bad_arn.stderr
    ok = check("    bucket_arn: arn:aws:s3:::b\n    secret_access_key: s3cr3t-value\n    access_key_id: AKIA\n")
    assert ok.returncode == 0, ok.stderr
    secret = check("    bucket_arn: arn:aws:s3:::b\n    secret_access_key: [s3cr3t-value]\n    access_key_id: AKIA\n")
    assert secret.returncode == 1 and "s3cr3t-value" not in secret.stderr + secret.stdout


def test_an_input_with_role_arn_assumes_it_through_sts_and_reads(tmp_path):
    http_port = free_port()
    with MotoServer() as aws:
        aws.reset()  # moto keeps its buckets per process, across servers
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/iplogs/2024-06-10/a.csv", Body=b'"through the role"\n')
        role = "arn:aws:iam::123456789012:role/umbrella-reader"
        config = forwarder_config(aws.endpoint, http_port, f"            role_arn: {role}")
        forwarder = ForwarderProcess(tmp_path, config)
        forwarder.start()
        try:
            wait_until(lambda: [e["message"] for e in output_events(tmp_path)] == ['"through the role"'], 30,
                       "the object read with the assumed role's credentials")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert "Traceback" not in forwarder.log_path.read_text()
