"""moto's AWS server (S3, SQS, SNS, STS) on a loopback port, for tests and benchmarks that use real boto3.

The forwarder under test reaches it as a custom endpoint (`endpoint:` in the
`aws-s3` input), exactly as a site points the input at MinIO or a regional
endpoint. Credentials are checked for form only; any non-empty pair works.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "AKIAFAKEFORWARDERTEST"
SECRET_ACCESS_KEY = "fake-secret-access-key-for-moto"
REGION = "us-east-1"


class MotoServer:
    """`with MotoServer() as aws:` → `aws.endpoint`, `aws.client("s3")`; `reset()` empties every service."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                            config=Config(retries={"max_attempts": 2, "mode": "standard"}))

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
