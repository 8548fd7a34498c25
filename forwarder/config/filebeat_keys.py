"""Filebeat keys the forwarder does not implement: each either ignored with its reason, or refused.

A `filebeat.yml` carries many settings for things this forwarder never does
(Elasticsearch templates, Kibana dashboards, config reload, seccomp). Refusing
them would stop a drop-in replacement from starting; ignoring them silently
would hide a difference. So each such key is listed here once, with the reason:

- `Ignored`: accepted, and reported once at start with the reason, unless its
  value is one under which ignoring it changes nothing (`reload.enabled: false`).
- `Refused`: a key whose silent absence would change where or whether events
  are delivered (`output.kafka`, a disk queue, autodiscover): one line, no start.

Keys the forwarder implements are read by the settings and input parsers as
usual; the keys of the inputs it implements that it ignores are declared with
those inputs (`forwarder/schema/declared.py` `ignored`). `set_aside` removes
the keys listed here before the parsers read what is left, so the parsers'
"unknown setting" check still catches typos in everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forwarder.schema.notices import report_ignored
from forwarder.schema.section import Problem, Section


@dataclass(frozen=True)
class Ignored:
    reason: str
    # Values that ask for what the forwarder does anyway: not reported.
    harmless: tuple[Any, ...] = ()
    # Not reported either while the sibling `enabled` is not true (`reload.period` without `reload.enabled`).
    only_when_enabled: bool = False


@dataclass(frozen=True)
class Refused:
    message: str


Rule = Ignored | Refused

_RELOAD = "config reload is not supported; restart the forwarder to apply changes"
_ELASTIC_SERVICES = "it configures Elasticsearch or Kibana, which this forwarder does not talk to"
_OWN_CLEANUP = "the forwarder's registry removes the state of deleted sources itself"
_TLS_DEFAULTS = "TLS versions and ciphers are Python's secure defaults (TLS 1.2 or later)"
_FILE_IDENTITY = "files are identified by device and inode (see file_identity)"

# Keys outside the inputs, as written after the `filebeat.` → `forwarder.` twin mapping.
TOP_LEVEL: dict[str, Rule] = {
    # Each `period` before its `enabled`, which it is judged by.
    "forwarder.config.modules.reload.period": Ignored(_RELOAD, only_when_enabled=True),
    "forwarder.config.modules.reload.enabled": Ignored(_RELOAD, harmless=(False,)),
    "forwarder.config.inputs.reload.period": Ignored(_RELOAD, only_when_enabled=True),
    "forwarder.config.inputs.reload.enabled": Ignored(_RELOAD, harmless=(False,)),
    "forwarder.registry.cleanup_interval": Ignored(_OWN_CLEANUP),
    "forwarder.registry.migrate_file": Ignored("a Filebeat 6.x registry file is not read; a 7.x or later registry "
                                               "is carried over with `forwarder import-registry`"),
    "forwarder.overwrite_pipelines": Ignored("Elasticsearch ingest pipelines are never loaded by this forwarder",
                                             harmless=(False,)),
    "forwarder.autodiscover": Refused("not supported: the inputs it would start would never run; list them under "
                                      "filebeat.inputs or in modules.d/"),
    "queue.spool": Refused("the spool queue is not supported: configure queue.mem"),
    "logging.selectors": Ignored("debug selectors are not supported: logging.level: debug (or -d) logs everything",
                                 harmless=((),)),
    "logging.to_syslog": Ignored("logging to syslog is not supported: logs go to files, or to stderr with -e",
                                 harmless=(False,)),
    "logging.to_eventlog": Ignored("logging to the Windows event log is not supported: logs go to files, or to "
                                   "stderr with -e", harmless=(False,)),
    "logging.json": Ignored("log lines are always JSON", harmless=(True,)),
    "logging.ecs": Ignored("log lines are always JSON with ECS-style names", harmless=(True,)),
    "logging.files.rotateonstartup": Ignored("log files are rotated by size only", harmless=(False,)),
    "logging.files.interval": Ignored("log files are rotated by size only", harmless=(0, "0", "0s")),
    "logging.files.redirect_stderr": Ignored("the Python runtime writes no crash output to stderr that a log file "
                                             "would need", harmless=(False,)),
    "http.named_pipe": Ignored("named pipes are not supported: the /stats endpoint listens on http.host:http.port"),
    "http.pprof": Ignored("Go's profiler does not exist in this forwarder", harmless=({"enabled": False},)),
    "setup": Ignored(_ELASTIC_SERVICES),
    "monitoring": Ignored(_ELASTIC_SERVICES + "; read /stats (http.enabled) for the forwarder's metrics"),
    "cloud": Ignored(_ELASTIC_SERVICES),
    "migration": Ignored(_ELASTIC_SERVICES),
    "instrumentation": Ignored("APM tracing of the Beat itself is not supported"),
    "seccomp": Ignored("seccomp filtering is specific to Filebeat's Go runtime and is not applied"),
    "max_procs": Ignored("the number of processes is `forwarder.workers` (auto: one worker per usable core)"),
}

# Outputs Filebeat has and this forwarder does not: refused when enabled (a disabled one is inert).
REFUSED_OUTPUTS = ("elasticsearch", "kafka", "redis", "discard")

# Input keys Filebeat documents that the input parsers do not declare, by input type ("*" = every type).
INPUT_KEYS: dict[str, dict[str, Rule]] = {
    "*": {
        "keep_null": Ignored("fields set to null are always sent, as Filebeat does with keep_null: true",
                             harmless=(True,)),
        "index": Ignored("the Logstash output's `index` names the events (@metadata.beat)"),
        "service.type": Ignored("`service.type` is set by modules only"),
    },
    "filestream": {
        "ignore_inactive": Ignored("files are chosen by ignore_older only"),
        "prospector.scanner.recursive_glob": Ignored("`**` in paths is expanded as Python's glob does",
                                                     harmless=(True,)),
        "prospector.scanner.resend_on_touch": Ignored("a touched file is not sent again", harmless=(False,)),
        "prospector.scanner.fingerprint": Ignored(_FILE_IDENTITY),
        "close.reader.on_eof": Ignored("files stay open until close.on_state_change.inactive", harmless=(False,)),
        "close.reader.after_interval": Ignored("files stay open until close.on_state_change.inactive",
                                               harmless=(0, "0", "0s")),
        "clean_inactive": Ignored(_OWN_CLEANUP, harmless=(-1, "-1")),
        "rotation": Ignored("copytruncate rotation is followed like any truncation: the file is read again from 0"),
        "take_over": Refused("not supported: taking over the log input's file states is done once with "
                             "`forwarder import-registry` (without it every file would be read again from the start)"),
    },
    "log": {
        "json.document_id": Ignored("the event id is the file path and offset"),
        "json.ignore_decoding_error": Ignored("a line that is not JSON is sent as text with error.message set"),
    },
    "syslog": {
        "protocol.tcp.ssl.supported_protocols": Ignored(_TLS_DEFAULTS),
        "protocol.tcp.ssl.cipher_suites": Ignored(_TLS_DEFAULTS, harmless=((),)),
        "protocol.tcp.ssl.curve_types": Ignored(_TLS_DEFAULTS, harmless=((),)),
        "protocol.tcp.ssl.renegotiation": Ignored(_TLS_DEFAULTS, harmless=("never",)),
        "protocol.tcp.ssl.verification_mode": Ignored("client certificates are checked as "
                                                      "ssl.client_authentication says"),
    },
    "aws-s3": {
        "max_number_of_messages": Ignored("deprecated in Filebeat; number_of_workers bounds the messages in flight"),
    },
}


def set_aside_top_level(config: dict[str, Any], source: str, problems: list[Problem]) -> None:
    """Removes every listed key outside the inputs from `config`, reporting ignored ones and refusing the rest."""
    for dotted, rule in TOP_LEVEL.items():
        _set_aside(config, dotted, dotted, rule, source, problems)


def set_aside_input_keys(section: Section, type_name: str) -> None:
    """The same for one input's mapping, before its type's parser reads it."""
    rules = {**INPUT_KEYS["*"], **INPUT_KEYS.get(type_name, {})}
    for dotted, rule in rules.items():
        _set_aside(section.data, dotted, section.key_path(dotted), rule, section.source, section.problems)


def _set_aside(config: dict[str, Any], dotted: str, key_path: str, rule: Rule, source: str,
               problems: list[Problem]) -> None:
    parts = dotted.split(".")
    trail: list[dict[str, Any]] = []
    node: Any = config
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return
        trail.append(node)
        node = node.get(part)
    if not isinstance(node, dict) or parts[-1] not in node:
        return
    value = node.pop(parts[-1])
    sibling_enabled = _is_true(node.get("enabled"))
    for parent, part in zip(reversed(trail), reversed(parts[:-1]), strict=True):
        if parent.get(part) != {}:
            break
        del parent[part]  # `reload: {}` left behind by removing `reload.enabled` is no unknown setting
    if isinstance(rule, Refused):
        problems.append(Problem(source, key_path, rule.message))
    elif not _is_harmless(value, rule.harmless) and (sibling_enabled or not rule.only_when_enabled):
        report_ignored(source, key_path + (".*" if isinstance(value, dict) else ""), rule.reason)


def _is_true(value: Any) -> bool:
    return str(value).lower() == "true"


def _is_harmless(value: Any, harmless: tuple[Any, ...]) -> bool:
    if value is None:
        return True
    for candidate in harmless:
        if isinstance(candidate, tuple):
            if value in ([], "", {}):
                return True
        elif isinstance(candidate, bool) or isinstance(value, bool):
            if str(value).lower() == str(candidate).lower():
                return True
        elif value == candidate:
            return True
    return False
