"""The cisco module file → the aws-s3 input it renders, validated the way the loader validates module inputs."""

from __future__ import annotations

import textwrap

import yaml

from forwarder import __version__
from forwarder.config.inputs import COMMON_INPUT_KEYS
from forwarder.config.loader import expand_dotted
from forwarder.inputs.aws_s3_config import AwsS3Config, parse_config
from forwarder.modules.base import FilesetInput
from forwarder.modules.cisco import MODULE_TYPE
from forwarder.pipeline.event import Event
from forwarder.schema.section import Problem, Section

SOURCE = "modules.d/cisco.yml"
PREFIX = "1234567_0123456789abcdef0123456789abcdef01234567"
AUDIT_KEY = f"{PREFIX}/auditlogs/2024-06-10/2024-06-10-10-20-ab3f.csv.gz"


def expand(text: str) -> tuple[list[tuple[FilesetInput, AwsS3Config]], list[str]]:
    problems: list[Problem] = []
    inputs = []
    for index, item in enumerate(yaml.safe_load(textwrap.dedent(text))):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        for fileset_input in MODULE_TYPE.expand(entry):
            config = parse_config(fileset_input.section)
            fileset_input.section.ignore(*COMMON_INPUT_KEYS)
            fileset_input.section.finish()
            inputs.append((fileset_input, config))
    return inputs, [str(problem) for problem in problems]


def test_cisco_managed_bucket_renders_listing_mode_with_one_selector_per_log_type() -> None:
    inputs, problems = expand(f"""
        - module: cisco
          umbrella:
            enabled: true
            var.input: aws-s3
            var.bucket_arn: arn:aws:s3:::cisco-managed-us-east-1
            var.bucket_list_prefix: {PREFIX}/
            var.region: us-east-1
            var.access_key_id: AKIAEXAMPLEKEY
            var.secret_access_key: secret-from-the-dashboard
    """)
    assert problems == []
    [(fileset_input, config)] = inputs
    data = fileset_input.section.data
    assert data["type"] == "aws-s3" and data["bucket_list_prefix"] == f"{PREFIX}/"
    assert data["tags"] == ["cisco-umbrella", "forwarded"]
    assert [selector["regex"] for selector in data["file_selectors"]] == [
        f"^{PREFIX}/{folder}/" for folder in ("dnslogs", "proxylogs", "iplogs", "cloudfirewalllogs", "firewalllogs",
                                              "intrusionlogs", "dlplogs", "auditlogs")]
    assert config.bucket_name == "cisco-managed-us-east-1" and config.queue_url is None
    assert config.region == "us-east-1" and config.access_key_id == "AKIAEXAMPLEKEY"
    assert config.bucket_list_prefix == f"{PREFIX}/"
    assert fileset_input.input_id == "cisco-umbrella"
    assert fileset_input.module_fields == {"event": {"module": "cisco", "dataset": "cisco.umbrella"},
                                           "fileset": {"name": "umbrella"}, "service": {"type": "cisco"}}
    assert fileset_input.ingest_pipeline is None and len(fileset_input.processors) == 1
    assert config.reader_options(f"{PREFIX}/dnslogs/2024-06-10/x.csv.gz").parsers == ()
    assert len(config.reader_options(AUDIT_KEY).parsers) == 1


def test_audit_selector_joins_a_record_whose_quoted_text_spans_lines() -> None:
    inputs, problems = expand("""
        - module: cisco
          umbrella:
            var.non_aws_bucket_name: umbrella-logs
            var.endpoint: https://minio.example.internal:9000
            var.log_types: [auditlogs]
    """)
    assert problems == []
    [(_, config)] = inputs
    multiline = config.reader_options(AUDIT_KEY).parsers[0]
    pattern = multiline.pattern
    assert multiline.negate and multiline.match == "after"
    assert pattern.search('"1234567891","2023-03-28 08:08:07","null","null","roamingdevices","delete","","a: 1')
    assert pattern.search('"","2021-07-22 10:46:45","admin@example.com","","x","update","","version: 4","v: 5"')
    assert not pattern.search("label: 1787")
    assert not pattern.search('modifiedAt: 2023-03-16 09:37:31"')
    assert config.reader_options(f"{PREFIX}/dnslogs/2024-06-10/x.csv.gz").parsers == ()


def test_sqs_mode_filebeat_style_module_file() -> None:
    inputs, problems = expand("""
        - module: cisco
          umbrella:
            enabled: true
            var.input: aws-s3
            var.queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/umbrella-logs
            var.access_key_id: AKIAEXAMPLEKEY
            var.secret_access_key: secret
            var.visibility_timeout: 600s
            var.api_timeout: 60s
            var.tags: [umbrella]
    """)
    assert problems == []
    [(fileset_input, config)] = inputs
    assert config.queue_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/umbrella-logs"
    assert config.visibility_timeout == 600 and config.api_timeout == 60
    assert fileset_input.section.data["tags"] == ["umbrella"]
    assert fileset_input.section.data["file_selectors"][0] == {"regex": "(^|/)dnslogs/"}
    assert "bucket_list_prefix" not in fileset_input.section.data


def test_normalize_false_sends_raw_lines_for_filebeats_ingest_pipeline() -> None:
    inputs, problems = expand("""
        - module: cisco
          var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
          umbrella:
            var.normalize: false
    """)
    assert problems == []
    [(fileset_input, _)] = inputs
    assert fileset_input.processors == []
    assert fileset_input.ingest_pipeline == f"filebeat-{__version__}-cisco-umbrella-pipeline"


def test_log_types_subset_renders_only_those_folders_and_maps_only_them() -> None:
    inputs, problems = expand("""
        - module: cisco
          umbrella:
            var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
            var.log_types: [dnslogs, proxylogs]
    """)
    assert problems == []
    [(fileset_input, _)] = inputs
    assert [s["regex"] for s in fileset_input.section.data["file_selectors"]] == ["(^|/)dnslogs/", "(^|/)proxylogs/"]
    [mapping] = fileset_input.processors
    firewall = Event({"message": '"2019-01-14 18:03:46"', "aws": {"s3": {"object": {"key": "x/iplogs/a.csv.gz"}}}})
    assert mapping(firewall) is None


def test_mistakes_are_reported_against_the_module_file() -> None:
    _, problems = expand("""
        - module: cisco
          asa:
            enabled: true
          ftd:
            enabled: false
            var.syslog_host: 0.0.0.0
          umbrella:
            var.input: file
            var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
            var.bucket_arn: arn:aws:s3:::also-a-bucket
    """)
    assert problems == [
        "modules.d/cisco.yml: 0.asa.enabled: the cisco asa fileset is not supported by this forwarder yet (only "
        "umbrella, amp and esa); set enabled: false",
        "modules.d/cisco.yml: 0.umbrella.var.input: only 'aws-s3' is supported (got 'file'); to read exported "
        "Umbrella CSV files from disk use a filestream input with the cisco_umbrella processor",
    ]
    _, problems = expand("""
        - module: cisco
          umbrella:
            var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
            var.bucket_arn: arn:aws:s3:::also-a-bucket
            var.log_types: [dnslogs, weblogs]
            var.queue_ulr: typo
    """)
    assert any("0.umbrella.var.log_types: unknown Umbrella log type(s) weblogs" in p for p in problems), problems
    assert any("queue_ulr" in p and "queue_url" in p for p in problems), problems
    _, problems = expand("""
        - module: cisco
          umbrella:
            var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
            var.bucket_arn: arn:aws:s3:::also-a-bucket
    """)
    assert any("set exactly one of bucket_arn, non_aws_bucket_name or queue_url" in p for p in problems), problems
