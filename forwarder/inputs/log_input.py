"""Filebeat's deprecated `log` input, translated onto the filestream input.

Vendor guides still print `- type: log` with `multiline.*` and `json.*` keys,
and such a config has to run unchanged. Rather than a second file follower,
its keys are translated into a `FilestreamConfig` and the files are followed
by `FilestreamInput`: same reader, same rotation handling, same cursors. Only
the type name differs, so events carry `input.type: log`.

How the keys translate:
- `paths`, `exclude_files`, `include_lines`, `exclude_lines`, `encoding`,
  `ignore_older`, `harvester_limit`, `clean_removed`, `symlinks`: same meaning.
- `max_bytes` (10MiB) → `message_max_bytes`; `scan_frequency` (10s) →
  `prospector.scanner.check_interval`; `close_inactive` (5m) →
  `close.on_state_change.inactive`; `close_removed` / `close_renamed` →
  `close.on_state_change.removed` / `renamed`, because filestream honours both
  and ignoring them would quietly change when a file is let go.
- `multiline.*` → a multiline parser with the same keys (`type`, `pattern`,
  `negate`, `match`, `flush_pattern`, `count_lines`, `max_lines`, `timeout`,
  `skip_newline`).
- `json.*` → an ndjson parser that runs before multiline, in the log input's
  order: `keys_under_root: true` decodes into the event root, otherwise into
  `json`; `overwrite_keys`, `add_error_key`, `message_key`, `expand_keys` and
  `document_id` keep their names. As with filestream's ndjson, the value of
  `message_key` also becomes `message`, and `add_error_key` defaults to true so
  an undecodable line says why it arrived raw.

Accepted and without effect: `tail_files` (this forwarder never skips data:
files without a saved position are read from their start, and a warning says
so when it is true), `close_eof`, `close_timeout`, `clean_inactive`, `backoff`,
`max_backoff`, `backoff_factor`, `harvester_buffer_size`,
`recursive_glob.enabled` (`**` always recurses) and `json.ignore_decoding_error`.
Any other key is reported as unknown, with a suggestion.

The log input has no `id` in Filebeat, so none is asked for: the default id is
`log-` plus a hash of the sorted `paths`, and no warning about it is logged at
start. That id changes when `paths` change, and the files are then read again
from the start; an `id` key is accepted to prevent that. Registry keys are
namespaced by input type and id, so a `log` and a `filestream` input on the same
file keep separate cursors: switching a config from one type to the other reads
the files again.
"""

from __future__ import annotations

from dataclasses import dataclass

from forwarder.inputs.base import InputContext, InputType
from forwarder.inputs.filestream import FilestreamInput
from forwarder.inputs.filestream_config import (
    CHECK_INTERVAL_DOC,
    ENCODING,
    INACTIVE_DOC,
    MESSAGE_MAX_BYTES_DOC,
    PATHS,
    SHARED_TAIL,
    FilestreamConfig,
    check_shared,
    non_blank_paths,
    paths_id,
)
from forwarder.inputs.multiline_parser import MultilineConfig, parse_multiline_config
from forwarder.inputs.ndjson_parser import NdjsonConfig, parse_ndjson_config
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    REGEXES,
    SIZE,
    Setting,
    ValueType,
    ignored,
    read_settings,
)
from forwarder.schema.section import Section

TYPE_NAME = "log"


def _read_json(section: Section, key: str, setting: Setting, default: object) -> NdjsonConfig | None:
    if section.raw(key) is None:
        return None
    json = section.section(key)
    target = "" if json.boolean("keys_under_root", False) else "json"
    return parse_ndjson_config(json, target)


def _read_multiline(section: Section, key: str, setting: Setting, default: object) -> MultilineConfig | None:
    if section.raw(key) is None:
        return None
    return parse_multiline_config(section.section(key))


SETTINGS = (
    PATHS,
    Setting("scan_frequency", DURATION, "10s", CHECK_INTERVAL_DOC, positive=True),
    Setting("exclude_files", REGEXES, [], "files whose path matches are not read"),
    Setting("symlinks", BOOLEAN, False, "follow symbolic links matched by `paths`"),
    Setting("include_lines", REGEXES, [], "when set, only lines that match are sent"),
    Setting("exclude_lines", REGEXES, [], "lines that match are dropped (after `include_lines`)"),
    Setting("close_inactive", DURATION, "5m", INACTIVE_DOC, positive=True),
    Setting("close_removed", BOOLEAN, True, "close a file once it is deleted and read to its end"),
    Setting("close_renamed", BOOLEAN, False, "close a file once it is renamed and read to its end"),
    ENCODING,
    Setting("max_bytes", SIZE, "10MiB", MESSAGE_MAX_BYTES_DOC, positive=True),
    Setting("json", ValueType("mapping", _read_json), None,
            "decode each line as JSON before lines are joined: `keys_under_root: true` decodes into the event "
            "root, otherwise under `json`; `overwrite_keys`, `add_error_key` (default true), `message_key`, "
            "`expand_keys`, `document_id`"),
    Setting("multiline", ValueType("mapping", _read_multiline), None,
            "join lines: `type`, `pattern`, `negate`, `match`, `flush_pattern`, `count_lines`, `max_lines`, "
            "`timeout`, `skip_newline`"),
    *SHARED_TAIL,
    Setting("tail_files", BOOLEAN, False, "not supported: `true` logs a warning and files are read from their start "
            "(nothing is skipped silently)"),
    *ignored("close_eof", "close_timeout", "clean_inactive", "backoff", "max_backoff", "backoff_factor",
             "harvester_buffer_size", "recursive_glob.enabled",
             doc="Filebeat harvester tuning without a counterpart here (`**` always recurses): accepted, "
                 "without effect"),
)


@dataclass
class LogInputConfig(FilestreamConfig):
    # Only remembered to warn at start that it has no effect.
    tail_files: bool


def parse_config(section: Section) -> LogInputConfig:
    values = read_settings(section, SETTINGS)
    check_shared(values)
    # JSON is decoded before lines are joined, the order of the log input's reader.
    parsers = [parser for parser in (values["json"], values["multiline"]) if parser is not None]
    return LogInputConfig(
        paths=non_blank_paths(values),
        exclude_files=values["exclude_files"],
        include_files=[],
        exclude_lines=values["exclude_lines"],
        include_lines=values["include_lines"],
        check_interval=values["scan_frequency"],
        symlinks=values["symlinks"],
        close_inactive=values["close_inactive"],
        close_removed=values["close_removed"],
        close_renamed=values["close_renamed"],
        ignore_older=values["ignore_older"],
        message_max_bytes=values["max_bytes"],
        parsers=parsers,
        harvester_limit=values["harvester_limit"],
        clean_removed=values["clean_removed"],
        tail_files=values["tail_files"],
    )


def default_id(config: FilestreamConfig) -> str:
    return paths_id(TYPE_NAME, config.paths)


def create(config: LogInputConfig, context: InputContext) -> FilestreamInput:
    if config.tail_files:
        context.log.warning(
            "log input %s: tail_files is not supported; files without a saved position are read from their start",
            context.input_id,
        )
    return FilestreamInput(config, context, TYPE_NAME)


INPUT_TYPE = InputType(TYPE_NAME, parse_config, create, default_id=default_id)
