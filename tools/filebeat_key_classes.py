"""Answers every Filebeat key of tests/fixtures/filebeat/reference_keys.txt by loading it, and writes README's table.

    python tools/filebeat_key_classes.py           # rewrite the table in README.md
    python tools/filebeat_key_classes.py --check   # exit 1 when README.md's table differs

Each key is set (to the value the list gives) in an otherwise minimal
filebeat.yml that is loaded with the forwarder's real config loader; what the
load says is the key's class: a config error naming the key → refused, a start
warning "KEY: ignored (reason)" → ignored, neither → implemented. Anything else
(an "unknown setting", several errors, a type error) is `unanswered`, which the
test suite fails on. The README table is rendered from these results, so it
says what the forwarder does, not what someone believed it does.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forwarder.config.loader import deep_merge, expand_dotted
from forwarder.config.settings import CliOptions, load_settings
from forwarder.schema.section import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KEYS_FILE = ROOT / "tests" / "fixtures" / "filebeat" / "reference_keys.txt"
README = ROOT / "README.md"
BEGIN, END = "<!-- filebeat-keys:begin -->", "<!-- filebeat-keys:end -->"
_INPUT_KEY = re.compile(r"^filebeat\.inputs\[([\w-]+)\]\.(.+)$")

# The least each input type needs to load; a key under test is merged over it.
BASE_INPUTS: dict[str, dict[str, Any]] = {
    "filestream": {"type": "filestream", "id": "under-test", "paths": ["{home}/*.log"]},
    "log": {"type": "log", "paths": ["{home}/*.log"]},
    "syslog": {"type": "syslog", "protocol": {"udp": {"host": "127.0.0.1:9000"}}},
    "aws-s3": {"type": "aws-s3", "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/queue"},
    "azure-eventhub": {"type": "azure-eventhub", "eventhub": "insights-logs-signinlogs",
                       "connection_string": "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;"
                                            "SharedAccessKey=s",
                       "storage_account": "examplestorage", "storage_account_key": "example-key"},
    "o365audit": {"type": "o365audit", "application_id": "00000000-0000-0000-0000-000000000001",
                  "tenant_id": "00000000-0000-0000-0000-000000000002", "client_secret": "example-secret"},
}
# Keys that only make sense next to another one (a bucket instead of a queue, TCP instead of UDP).
BASE_FOR_KEY: dict[str, dict[str, Any]] = {
    "aws-s3.bucket_arn": {"queue_url": None},
    "aws-s3.non_aws_bucket_name": {"queue_url": None, "endpoint": "https://s3.example.com"},
    "aws-s3.bucket_list_interval": {"queue_url": None, "bucket_arn": "arn:aws:s3:::test-s3-bucket"},
    "aws-s3.bucket_list_prefix": {"queue_url": None, "bucket_arn": "arn:aws:s3:::test-s3-bucket"},
    "aws-s3.start_timestamp": {"queue_url": None, "bucket_arn": "arn:aws:s3:::test-s3-bucket"},
    "aws-s3.ignore_older": {"queue_url": None, "bucket_arn": "arn:aws:s3:::test-s3-bucket"},
    "aws-s3.secret_access_key": {"access_key_id": "AKIAEXAMPLE"},
    "aws-s3.access_key_id": {"secret_access_key": "example-secret"},
    "aws-s3.session_token": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "example-secret"},
    "azure-eventhub.storage_account_connection_string": {"storage_account_key": None},
    "filebeat.config.modules.reload.period": {"filebeat.config.modules.reload.enabled": True},
    "filebeat.config.inputs.reload.period": {"filebeat.config.inputs.reload.enabled": True},
    "log.multiline": {"multiline": {"type": "pattern", "pattern": "^\\[", "match": "after"}},
    "output.logstash.ssl.certificate": {"ssl": {"key": "{home}/missing.key"}},
    "output.logstash.ssl.key": {"ssl": {"certificate": "{home}/missing.pem"}},
    "syslog.protocol": {"protocol": {"udp": None, "tcp": {"host": "127.0.0.1:9000"}}},
    "syslog.protocol.udp": {"protocol": {"udp": {"host": "127.0.0.1:9000"}, "tcp": None}},
    "syslog.protocol.unix": {"protocol": {"udp": None}},
}
BASE_OUTPUTS: dict[str, dict[str, Any]] = {
    "logstash": {"hosts": ["127.0.0.1:5044"]},
    "file": {"path": "{home}/out"},
    "console": {},
}


@dataclass(frozen=True)
class KeyClass:
    section: str
    key: str
    answer: str  # implemented, ignored, refused, or unanswered
    detail: str  # the reason (ignored), the error line (refused), what went wrong (unanswered)


def read_keys(path: Path = KEYS_FILE) -> list[tuple[str, str, Any]]:
    """(section title, key, value) for every line of the key list."""
    section, keys = "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            keys.append((section, key.strip(), yaml.safe_load(value)))
    return keys


def config_setting(key: str, value: Any, home: Path) -> dict[str, Any]:
    """A minimal filebeat.yml mapping that sets `key` to `value`."""
    config: dict[str, Any] = {}
    match = _INPUT_KEY.match(key)
    input_type, input_key = (match.group(1), match.group(2)) if match else ("filestream", None)
    item = _filled(BASE_INPUTS[input_type], home)
    if input_key is not None:
        for prefix, base in BASE_FOR_KEY.items():
            if f"{input_type}.{input_key}".startswith(prefix):
                deep_merge(item, expand_dotted(base))
        item = _without_none(item)
        deep_merge(item, expand_dotted({input_key: value}))
    config["filebeat"] = {"inputs": [item]}
    output = key.split(".")[1] if key.startswith("output.") else "file"
    config["output"] = {output: _filled(BASE_OUTPUTS.get(output, {}), home)}
    for prefix, base in BASE_FOR_KEY.items():
        if prefix.startswith("output.") and key.startswith(prefix):
            deep_merge(config["output"][output], _filled(base, home))
    if input_key is None:
        for prefix, base in BASE_FOR_KEY.items():
            if prefix.startswith("filebeat.") and key.startswith(prefix):
                deep_merge(config, expand_dotted(base))
        deep_merge(config, expand_dotted({key: value}))
    return config


def classify(section: str, key: str, value: Any, home: Path) -> KeyClass:
    config_path = home / "filebeat.yml"
    config_path.write_text(yaml.safe_dump(config_setting(key, value, home)), encoding="utf-8")
    os.chmod(config_path, 0o600)
    shown = _as_reported(key)
    try:
        settings = load_settings(CliOptions(config_files=[str(config_path)], path_home=str(home)))
    except ConfigError as error:
        return _answer_of_errors(section, key, error)
    mentions = [line for line in settings.warnings if _names(line, shown)]
    if not mentions:
        return KeyClass(section, key, "implemented", "")
    reason = re.search(r": ignored \((.*)\)$", mentions[0])
    if len(mentions) == 1 and reason:
        return KeyClass(section, key, "ignored", reason.group(1))
    return KeyClass(section, key, "unanswered", " | ".join(mentions))


def _answer_of_errors(section: str, key: str, error: ConfigError) -> KeyClass:
    """Refused: one line, naming the key (or a section holding it), saying it is not supported.

    An error that names the key or a key next to it for another reason (a file that does not exist, a
    companion setting that is missing) shows that the forwarder reads and checks the key: implemented.
    """
    shown = _as_reported(key)
    lines = [str(problem) for problem in error.problems]
    named = [problem for problem in error.problems if _covers(problem.key, shown)]
    if len(lines) == 1 and named and "not supported" in lines[0].replace("unsupported", "not supported"):
        return KeyClass(section, key, "refused", named[0].message)
    section_path = shown.rpartition(".")[0]
    if all(_covers(problem.key, section_path) and "not supported" not in problem.message
           and "unknown setting" not in problem.message for problem in error.problems):
        return KeyClass(section, key, "implemented", "")
    return KeyClass(section, key, "unanswered", " | ".join(lines))


def _covers(named: str, key_path: str) -> bool:
    return key_path == named or key_path.startswith(named + ".") or named.startswith(key_path + ".")


def classify_all(path: Path = KEYS_FILE) -> list[KeyClass]:
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        return [classify(section, key, value, home) for section, key, value in read_keys(path)]


def render(results: list[KeyClass]) -> str:
    """One row per section and answer: the keys answered alike, with the reason they share."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for result in results:
        rows.setdefault((result.section, result.answer, result.detail), []).append(result.key)
    lines = ["| section | answer | Filebeat keys |", "|---|---|---|"]
    for (section, answer, detail), keys in rows.items():
        said = f"{answer}: {detail}" if detail else answer
        lines.append(f"| {section} | {said} | {', '.join(f'`{_short(key)}`' for key in keys)} |")
    return "\n".join(lines)


def _short(key: str) -> str:
    match = _INPUT_KEY.match(key)
    return match.group(2) if match else key


def _as_reported(key: str) -> str:
    """The key path the loader reports: `filebeat.` read as `forwarder.`, the input as item 0 of the list."""
    match = _INPUT_KEY.match(key)
    if match:
        return f"forwarder.inputs.0.{match.group(2)}"
    return "forwarder." + key[len("filebeat."):] if key.startswith("filebeat.") else key


def _names(line: str, key_path: str) -> bool:
    """Whether a warning is about `key_path` or a section containing it (`setup.*` covers `setup.ilm.enabled`)."""
    named = line.split(": ")[1] if ": " in line else ""
    named = named.removesuffix(".*")
    return bool(named) and (key_path == named or key_path.startswith(named + "."))


def _filled(template: dict[str, Any], home: Path) -> dict[str, Any]:
    text = yaml.safe_dump(template).replace("{home}", str(home))
    return yaml.safe_load(text) or {}


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table is not current")
    args = parser.parse_args()
    results = classify_all()
    unanswered = [result for result in results if result.answer == "unanswered"]
    for result in unanswered:
        print(f"unanswered: {result.key}: {result.detail}", file=sys.stderr)
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    updated = pattern.sub(lambda _: f"{BEGIN}\n{render(results)}\n{END}", text)
    if args.check:
        current = updated == text
        if not current:
            print("README.md: the Filebeat key table is stale; run python tools/filebeat_key_classes.py",
                  file=sys.stderr)
        return 0 if current and not unanswered else 1
    README.write_text(updated, encoding="utf-8")
    return 1 if unanswered else 0


if __name__ == "__main__":
    sys.exit(main())
