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

from forwarder.schema.section import Section
from forwarder.inputs.base import InputContext, InputType
from forwarder.inputs.filestream import FilestreamInput
from forwarder.inputs.filestream_config import (
    FilestreamConfig,
    check_encoding,
    message_max_bytes,
    paths_id,
    positive_duration,
    read_paths,
    regexes,
)
from forwarder.inputs.line_parsers import ParserConfig
from forwarder.inputs.multiline_parser import parse_multiline_config
from forwarder.inputs.ndjson_parser import parse_ndjson_config

TYPE_NAME = "log"
# Keys of Filebeat's Go harvester with no counterpart in the filestream input.
IGNORED_KEYS = (
    "close_eof", "close_timeout", "clean_inactive", "backoff", "max_backoff", "backoff_factor", "harvester_buffer_size",
)


@dataclass
class LogInputConfig(FilestreamConfig):
    # Only remembered to warn at start that it has no effect.
    tail_files: bool = False


def parse_config(section: Section) -> LogInputConfig:
    paths = read_paths(section)
    check_encoding(section)
    config = LogInputConfig(
        paths=paths,
        exclude_files=regexes(section, "exclude_files"),
        exclude_lines=regexes(section, "exclude_lines"),
        include_lines=regexes(section, "include_lines"),
        check_interval=positive_duration(section, "scan_frequency", 10.0),
        symlinks=section.boolean("symlinks", False),
        close_inactive=positive_duration(section, "close_inactive", 300.0),
        close_removed=section.boolean("close_removed", True),
        close_renamed=section.boolean("close_renamed", False),
        ignore_older=section.duration("ignore_older", 0.0),
        message_max_bytes=message_max_bytes(section, "max_bytes"),
        parsers=_parsers(section),
        harvester_limit=section.integer("harvester_limit", 0, minimum=0),
        clean_removed=section.boolean("clean_removed", True),
        tail_files=section.boolean("tail_files", False),
    )
    section.ignore(*IGNORED_KEYS)
    recursive_glob = section.section("recursive_glob")
    recursive_glob.ignore("enabled")
    recursive_glob.finish()
    return config


def _parsers(section: Section) -> list[ParserConfig]:
    """JSON is decoded before lines are joined, the order of the log input's reader."""
    parsers: list[ParserConfig] = []
    if section.raw("json") is not None:
        json = section.section("json")
        target = "" if json.boolean("keys_under_root", False) else "json"
        parsers.append(parse_ndjson_config(json, target))
    if section.raw("multiline") is not None:
        parsers.append(parse_multiline_config(section.section("multiline")))
    return parsers


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
