"""The settings of the `aws-s3` input, under Filebeat's names and defaults.

A Filebeat `aws-s3` input block must load unchanged, so every key Filebeat
documents is declared here: the ones we implement, the tuning keys we accept
without effect, and the features we do not have, which are refused with a
line that says so (silently ignoring a backup or a script would lose data).
Reading needs no network: `forwarder test config` reports every mistake
against the key the user wrote. `SETTINGS` is also the README's table.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass, field, replace

from forwarder.inputs.filestream_config import PARSERS, SUPPORTED_ENCODINGS
from forwarder.inputs.line_parsers import ParserConfig
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    SIZE,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ignored,
    read_settings,
    rejected,
    section_list,
)
from forwarder.schema.section import Section

BUCKET_ARN = re.compile(r"^arn:[a-z-]+:s3:::([^/]+)$")
DEFAULT_REGION = "us-east-1"
MAX_VISIBILITY_TIMEOUT = 12 * 3600.0
MAX_SQS_WAIT = 20.0
VERIFICATION_MODES = ("full", "strict", "certificate", "none")

READER_TUNING = ignored("buffer_size", "line_terminator", doc="tuning of Filebeat's reader: accepted, without "
                        "effect (lines end at `\\n`, a trailing `\\r` is removed)")
READER_UNSUPPORTED = rejected("decoding.codec", message="is not supported; read CSV lines as text and parse them "
                              "with a processor (the cisco module does)")


def _reader_settings(defaults: bool) -> tuple[Setting, ...]:
    """The reader options, at the top level (with defaults) or in a file selector (unset = the top level's)."""

    def default(value: object) -> object:
        return value if defaults else None

    return (
        Setting("content_type", STRING, None, "`application/json` reads each object as JSON documents (one event per "
                "document, or per element of `expand_event_list_from_field`); otherwise lines of text",
                doc_default="from the object"),
        Setting("encoding", STRING, default("utf-8"), "`utf-8` (or `plain`); invalid bytes are replaced and counted "
                "(`lines_invalid_utf8`)"),
        Setting("max_bytes", SIZE, default("10MiB"), "longest line (or JSON document); a longer one fails the object "
                "(`objects_line_too_long`)", positive=True),
        Setting("expand_event_list_from_field", STRING, None, "one event per element of this JSON array field"),
        Setting("include_s3_metadata", STRINGS, default([]), "object headers copied to `aws.s3.metadata`"),
        Setting("parsers", PARSERS, default([]), "the filestream parsers (`ndjson`, `multiline`), in order"),
        *READER_TUNING,
        *READER_UNSUPPORTED,
    )


READER_SETTINGS = _reader_settings(defaults=True)
SELECTOR_SETTINGS = (Setting("regex", STRING, doc="object keys this selector applies to (searched)"),
                     *_reader_settings(defaults=False))
FILE_SELECTORS = section_list("list of reader options by `regex`", SELECTOR_SETTINGS)

SETTINGS = (
    Setting("bucket_arn", STRING, None, "`arn:aws:s3:::NAME`: list this bucket (listing mode)"),
    Setting("non_aws_bucket_name", STRING, None, "bucket name on an S3-compatible service or a Cisco-managed "
            "bucket (listing mode); set `endpoint` for a non-AWS service"),
    Setting("queue_url", STRING, None, "SQS queue receiving the bucket's event notifications (SQS mode)",
            doc_default="exactly one of the three"),
    Setting("bucket_list_prefix", STRING, "", "list only keys under this prefix (a Cisco-managed bucket's data path)"),
    Setting("bucket_list_interval", DURATION, "120s", "pause between listings of the bucket", positive=True),
    Setting("number_of_workers", INTEGER, 5, "objects read in parallel (listing mode) or messages handled in "
            "parallel (SQS mode)", minimum=1, maximum=256),
    Setting("ignore_older", DURATION, "0", "objects last modified longer ago are not read, and their state is "
            "forgotten", minimum=0, doc_default="`0` (off)"),
    Setting("start_timestamp", STRING, None, "RFC 3339 time: objects last modified before it are not read"),
    Setting("endpoint", STRING, None, "custom S3/SQS endpoint URL (MinIO, a regional endpoint, a test server); a bare "
            "host name means https"),
    Setting("region", STRING, None, "AWS region of the bucket or queue", doc_default="from `queue_url`, else "
            "`default_region`"),
    Setting("default_region", STRING, None, "region when `region` is not set", doc_default=f"`{DEFAULT_REGION}`"),
    Setting("path_style", BOOLEAN, False, "path-style addressing (`endpoint/bucket/key`), needed by MinIO"),
    Setting("access_key_id", STRING, None, "static credentials; otherwise boto3's chain (environment, shared file, "
            "instance role)"),
    Setting("secret_access_key", STRING, None, "secret of `access_key_id`; keep it in the keystore", secret=True),
    Setting("session_token", STRING, None, "session token of temporary credentials", secret=True),
    Setting("role_arn", STRING, None, "assume this role through STS with the credentials above"),
    Setting("credential_profile_name", STRING, None, "profile of the shared credentials file"),
    Setting("shared_credential_file", STRING, None, "shared credentials file", doc_default="`~/.aws/credentials`"),
    Setting("api_timeout", DURATION, "120s", "timeout of one AWS API call (at least `sqs.wait_time`)", positive=True),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for every AWS call"),
    Setting("ssl.certificate_authorities", STRINGS, [], "one CA bundle file for the endpoint",
            doc_default="system CAs"),
    Setting("ssl.verification_mode", STRING, "full", "`none` turns certificate checks off (tests only)",
            choices=VERIFICATION_MODES),
    *ignored("ssl.enabled", "ssl.supported_protocols", doc="accepted for Filebeat compatibility, without effect"),
    Setting("visibility_timeout", DURATION, "300s", "SQS: a message stays hidden this long, extended while its "
            "objects are read", positive=True, maximum=MAX_VISIBILITY_TIMEOUT),
    Setting("sqs.wait_time", DURATION, "20s", "SQS: long-poll wait of one receive", minimum=0, maximum=MAX_SQS_WAIT),
    Setting("sqs.max_receive_count", INTEGER, 5, "SQS: after this many receives a failing message is left to the "
            "queue's redrive policy, with one warning (`-1`: never give up)", minimum=-1),
    Setting("sqs.shutdown_grace_time", DURATION, "20s", "SQS: time given to messages in progress at shutdown",
            minimum=0),
    Setting("file_selectors", FILE_SELECTORS, [], "reader options for keys matching `regex` (the first match "
            "wins; unset options are the top level's)"),
    *READER_SETTINGS,
    *ignored("lexicographical_ordering", "lexicographical_lookback_keys", doc="accepted: every listing reads the "
             "whole prefix and skips known objects, so late objects with older keys are never missed"),
    *ignored("provider", "fips_enabled", "proxy_disable", doc="accepted for Filebeat compatibility, without effect"),
    *rejected("access_point_arn", message="is not supported; use bucket_arn"),
    *rejected("sqs.notification_parsing_script", message="is not supported: only S3 event notifications (direct, "
              "SNS-wrapped or EventBridge) are read"),
    *rejected("backup_to_bucket_arn", "non_aws_backup_to_bucket_name", "backup_to_bucket_prefix",
              "delete_after_backup", message="is not supported: objects are never copied or deleted"),
)


@dataclass(frozen=True)
class ReaderOptions:
    content_type: str | None = None
    max_bytes: int = 10 * 1024 * 1024
    expand_event_list_from_field: str | None = None
    include_s3_metadata: tuple[str, ...] = ()
    parsers: tuple[ParserConfig, ...] = ()


@dataclass(frozen=True)
class FileSelector:
    regex: re.Pattern[str]
    options: ReaderOptions


@dataclass
class AwsS3Config:
    bucket_name: str | None
    bucket_arn: str | None
    non_aws: bool
    queue_url: str | None
    bucket_list_prefix: str
    bucket_list_interval: float
    number_of_workers: int
    ignore_older: float
    start_timestamp: float | None
    endpoint: str | None
    region: str
    path_style: bool
    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    role_arn: str | None
    credential_profile_name: str | None
    shared_credential_file: str | None
    api_timeout: float
    proxy_url: str | None
    ca_bundle: str | None
    verify_certificates: bool
    visibility_timeout: float
    sqs_wait_time: float
    sqs_max_receive_count: int
    sqs_shutdown_grace_time: float
    reader: ReaderOptions
    file_selectors: list[FileSelector]

    def reader_options(self, key: str) -> ReaderOptions:
        """The options of the first file selector whose regex matches `key`, else the top level's."""
        for selector in self.file_selectors:
            if selector.regex.search(key):
                return selector.options
        return self.reader


def parse_config(section: Section) -> AwsS3Config:
    values = read_settings(section, SETTINGS)
    sources = [name for name in ("bucket_arn", "non_aws_bucket_name", "queue_url") if values[name]]
    if len(sources) != 1:
        values.error("bucket_arn" if not sources else sources[1], "set exactly one of bucket_arn, "
                     "non_aws_bucket_name or queue_url" + (f" (found {', '.join(sources)})" if sources else ""))
    bucket_name, bucket_arn = _bucket(values)
    if bool(values["access_key_id"]) != bool(values["secret_access_key"]):
        values.error("secret_access_key" if values["access_key_id"] else "access_key_id",
                     "access_key_id and secret_access_key go together")
    if values["api_timeout"] < values["sqs.wait_time"]:
        values.error("api_timeout", "must be at least sqs.wait_time")
    cas = values["ssl.certificate_authorities"]
    if len(cas) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate the PEM files)")
    reader = _reader(values, ReaderOptions())
    return AwsS3Config(
        bucket_name=bucket_name,
        bucket_arn=bucket_arn,
        non_aws=bool(values["non_aws_bucket_name"]),
        queue_url=values["queue_url"],
        bucket_list_prefix=values["bucket_list_prefix"],
        bucket_list_interval=values["bucket_list_interval"],
        number_of_workers=values["number_of_workers"],
        ignore_older=values["ignore_older"],
        start_timestamp=_start_timestamp(values),
        endpoint=_endpoint(values["endpoint"]),
        region=values["region"] or _queue_region(values["queue_url"]) or values["default_region"] or DEFAULT_REGION,
        path_style=values["path_style"],
        access_key_id=values["access_key_id"],
        secret_access_key=values["secret_access_key"],
        session_token=values["session_token"],
        role_arn=values["role_arn"],
        credential_profile_name=values["credential_profile_name"],
        shared_credential_file=values["shared_credential_file"],
        api_timeout=values["api_timeout"],
        proxy_url=values["proxy_url"],
        ca_bundle=cas[0] if cas else None,
        verify_certificates=values["ssl.verification_mode"] != "none",
        visibility_timeout=values["visibility_timeout"],
        sqs_wait_time=values["sqs.wait_time"],
        sqs_max_receive_count=values["sqs.max_receive_count"],
        sqs_shutdown_grace_time=values["sqs.shutdown_grace_time"],
        reader=reader,
        file_selectors=[FileSelector(re.compile(item["regex"] or ""), _reader(item, reader))
                        for item in values["file_selectors"] if _valid_regex(item)],
    )


def _bucket(values: SettingValues) -> tuple[str | None, str | None]:
    """(bucket name, the ARN used in events and ids); a non-AWS bucket's "ARN" is its name, as in Filebeat."""
    if values["non_aws_bucket_name"]:
        return values["non_aws_bucket_name"], values["non_aws_bucket_name"]
    arn = values["bucket_arn"]
    if not arn:
        return None, None
    match = BUCKET_ARN.match(arn)
    if match is None:
        values.error("bucket_arn", f"{arn!r} is not a bucket ARN; write arn:aws:s3:::BUCKET-NAME")
        return None, None
    return match.group(1), arn


def _reader(values: SettingValues, inherited: ReaderOptions) -> ReaderOptions:
    encoding = values["encoding"]
    if encoding is not None and encoding.lower() not in SUPPORTED_ENCODINGS:
        values.error("encoding", f"{encoding!r} is not supported; use utf-8 (or plain)")
    changes = {
        "content_type": values["content_type"],
        "max_bytes": values["max_bytes"],
        "expand_event_list_from_field": values["expand_event_list_from_field"],
        "include_s3_metadata": tuple(values["include_s3_metadata"]) if values["include_s3_metadata"] is not None
        else None,
        "parsers": tuple(values["parsers"]) if values["parsers"] is not None and values.section().raw("parsers")
        is not None else None,
    }
    return replace(inherited, **{name: value for name, value in changes.items() if value is not None})


def _valid_regex(item: SettingValues) -> bool:
    try:
        re.compile(item["regex"] or "")
    except re.error as exc:
        item.error("regex", f"invalid regular expression: {exc}")
        return False
    return True


def _start_timestamp(values: SettingValues) -> float | None:
    text = values["start_timestamp"]
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        values.error("start_timestamp", f"{text!r} is not an RFC 3339 time, e.g. 2024-06-01T00:00:00Z")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _endpoint(endpoint: str | None) -> str | None:
    if not endpoint:
        return None
    endpoint = endpoint.rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def _queue_region(queue_url: str | None) -> str | None:
    """`https://sqs.eu-west-1.amazonaws.com/...` → `eu-west-1` (Filebeat reads the region from the queue URL)."""
    match = re.match(r"^https?://sqs\.([a-z0-9-]+)\.amazonaws\.com/", queue_url or "")
    return match.group(1) if match else None


def default_id(config: AwsS3Config) -> str:
    """Stable while the bucket (or queue) and prefix are: the registry's per-object states are found again."""
    source = config.queue_url or f"{config.bucket_arn}|{config.bucket_list_prefix}"
    return f"aws-s3-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
