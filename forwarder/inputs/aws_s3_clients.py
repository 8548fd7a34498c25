"""boto3 clients for the `aws-s3` input, built from its config.

All signing, retries and the credential chain are boto3's: static keys from
the config win, then a named profile (of an optional credentials file), then
boto3's own chain (environment, `~/.aws`, instance or task role). `role_arn`
is assumed through STS on top of whichever credentials that yields and is
renewed before it expires. Every call gets `api_timeout`, the endpoint,
path-style addressing, the proxy and the CA bundle of the config.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, RefreshableCredentials

from forwarder.inputs.aws_s3_config import AwsS3Config

# boto3's standard retry mode: 5 attempts with backoff, as Filebeat's S3 client retries.
RETRIES = {"max_attempts": 5, "mode": "standard"}
ROLE_SESSION_NAME = "forwarder-aws-s3"
CONNECT_TIMEOUT = 10.0


def client_config(config: AwsS3Config, pool_size: int) -> Config:
    options: dict[str, Any] = {
        "region_name": config.region,
        "connect_timeout": min(CONNECT_TIMEOUT, config.api_timeout),
        "read_timeout": config.api_timeout,
        "retries": dict(RETRIES),
        "max_pool_connections": pool_size,
        "s3": {"addressing_style": "path" if config.path_style else "auto"},
    }
    if config.proxy_url:
        options["proxies"] = {"http": config.proxy_url, "https": config.proxy_url}
    return Config(**options)


def aws_session(config: AwsS3Config) -> boto3.Session:
    """A session with the config's credentials (see the module docstring for the order)."""
    core = botocore.session.Session(profile=config.credential_profile_name)
    if config.shared_credential_file:
        core.set_config_variable("credentials_file", config.shared_credential_file)
    if config.access_key_id:
        core.set_credentials(config.access_key_id, config.secret_access_key, config.session_token)
    session = boto3.Session(botocore_session=core, region_name=config.region)
    if config.role_arn:
        sts = session.client("sts", **_connection(config, pool_size=2))
        core = botocore.session.Session()
        core.get_component("credential_provider").insert_before("env", AssumedRole(sts, config.role_arn))
        session = boto3.Session(botocore_session=core, region_name=config.region)
    return session


def aws_client(session: boto3.Session, service: str, config: AwsS3Config, pool_size: int) -> Any:
    """A client of `service` ("s3", "sqs") for `number_of_workers` threads sharing it."""
    return session.client(service, **_connection(config, pool_size))


def _connection(config: AwsS3Config, pool_size: int) -> dict[str, Any]:
    verify: bool | str = config.ca_bundle or True
    if not config.verify_certificates:
        verify = False
    return {"endpoint_url": config.endpoint, "region_name": config.region, "verify": verify,
            "config": client_config(config, pool_size)}


class AssumedRole(CredentialProvider):
    """Credentials of `role_arn` from STS, renewed by botocore shortly before they expire."""

    METHOD = "assume-role"
    CANONICAL_NAME = "forwarder-assume-role"

    def __init__(self, sts: Any, role_arn: str) -> None:
        super().__init__()
        self._sts = sts
        self._role_arn = role_arn
        self._lock = threading.Lock()

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self._assume(), self._assume, self.METHOD)

    def _assume(self) -> dict[str, str]:
        with self._lock:
            answer = self._sts.assume_role(RoleArn=self._role_arn, RoleSessionName=ROLE_SESSION_NAME)
        credentials = answer["Credentials"]
        return {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
                "token": credentials["SessionToken"], "expiry_time": credentials["Expiration"].isoformat()}
