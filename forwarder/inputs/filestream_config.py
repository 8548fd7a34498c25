"""The settings of the filestream input, read from Filebeat's filestream keys.

`FilestreamConfig` is also what the deprecated `log` input translates its own
keys into, so the declarations and checks both inputs share (paths, encoding,
the line and file limits) live here; errors name whichever key the user
actually wrote. `SETTINGS` is also the source of the README's table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from forwarder.inputs.line_parsers import ParserConfig, parse_parsers
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    REGEXES,
    SIZE,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ValueType,
    ignored,
    read_settings,
)
from forwarder.schema.section import Section

SUPPORTED_ENCODINGS = ("utf-8", "utf8", "plain")


def _read_file_identity(section: Section, key: str, setting: Setting, default: object) -> None:
    identity = section.raw(key)
    if identity is not None and (not isinstance(identity, dict) or set(identity) - {"native"}):
        section.error(key, "only file_identity.native (device and inode) is supported")


PARSERS = ValueType("list of parsers", lambda section, key, setting, default: parse_parsers(section))
FILE_IDENTITY = ValueType("mapping", _read_file_identity)

PATHS = Setting("paths", STRINGS, doc="globs of the files to read (`**` recurses)")
ENCODING = Setting("encoding", STRING, "utf-8", "`utf-8` (or `plain`); other encodings are refused")
MESSAGE_MAX_BYTES_DOC = "longer lines are truncated (`log.flags: truncated`)"
CHECK_INTERVAL_DOC = "how often the globs are scanned for new, grown, renamed or removed files"
INACTIVE_DOC = "close a file unchanged this long; it is reopened when it grows"
SHARED_TAIL = (
    Setting("ignore_older", DURATION, "0", "files not modified for this long are not opened", minimum=0,
            doc_default="`0` (off)"),
    Setting("harvester_limit", INTEGER, 0, "most files open at once", minimum=0, doc_default="`0` (unlimited)"),
    Setting("clean_removed", BOOLEAN, True, "forget the saved position of a file once it is gone"),
)

SETTINGS = (
    PATHS,
    Setting("prospector.scanner.check_interval", DURATION, "10s", CHECK_INTERVAL_DOC, positive=True),
    Setting("prospector.scanner.exclude_files", REGEXES, [], "files whose path matches are not read"),
    Setting("prospector.scanner.include_files", REGEXES, [], "when set, only files whose path matches are read"),
    Setting("prospector.scanner.symlinks", BOOLEAN, False, "follow symbolic links matched by `paths`"),
    Setting("exclude_files", REGEXES, [], "as `prospector.scanner.exclude_files` (the log input's spelling)"),
    Setting("include_files", REGEXES, [], "as `prospector.scanner.include_files`"),
    Setting("include_lines", REGEXES, [], "when set, only lines that match are sent"),
    Setting("exclude_lines", REGEXES, [], "lines that match are dropped (after `include_lines`)"),
    Setting("close.on_state_change.inactive", DURATION, "5m", INACTIVE_DOC, positive=True),
    Setting("close.on_state_change.removed", BOOLEAN, True, "close a file once it is deleted and read to its end"),
    Setting("close.on_state_change.renamed", BOOLEAN, False, "close a file once it is renamed and read to its end"),
    ENCODING,
    Setting("message_max_bytes", SIZE, "10MiB", MESSAGE_MAX_BYTES_DOC, positive=True),
    Setting("parsers", PARSERS, [], "`ndjson` (`target`, `add_error_key`, `message_key`, `overwrite_keys`, "
            "`expand_keys`), `multiline` (`type: pattern` with `pattern`/`negate`/`match`/`max_lines`/`timeout`, "
            "or `type: count`) and `json_objects` (multi-line JSON objects: `target`, `keep_message`, `decode`, "
            "`max_bytes`, `add_error_key`, `overwrite_keys`, `expand_keys`), run in the order listed"),
    *SHARED_TAIL,
    Setting("file_identity", FILE_IDENTITY, None, "only `native` (device and inode) is supported",
            doc_default="`native`"),
    *ignored("buffer_size", "backoff", "close.on_state_change.check_interval",
             doc="tuning of Filebeat's reader: accepted, without effect"),
)
DEFAULT_MESSAGE_MAX_BYTES = next(s for s in SETTINGS if s.name == "message_max_bytes").default_value


@dataclass
class FilestreamConfig:
    paths: list[str]
    exclude_files: list[re.Pattern[str]]
    include_files: list[re.Pattern[str]]
    exclude_lines: list[re.Pattern[str]]
    include_lines: list[re.Pattern[str]]
    check_interval: float
    symlinks: bool
    close_inactive: float
    close_removed: bool
    close_renamed: bool
    ignore_older: float
    message_max_bytes: int
    parsers: list[ParserConfig]
    harvester_limit: int
    clean_removed: bool


def parse_config(section: Section) -> FilestreamConfig:
    values = read_settings(section, SETTINGS)
    check_shared(values)
    return FilestreamConfig(
        paths=non_blank_paths(values),
        exclude_files=values["exclude_files"] + values["prospector.scanner.exclude_files"],
        include_files=values["include_files"] + values["prospector.scanner.include_files"],
        exclude_lines=values["exclude_lines"],
        include_lines=values["include_lines"],
        check_interval=values["prospector.scanner.check_interval"],
        symlinks=values["prospector.scanner.symlinks"],
        close_inactive=values["close.on_state_change.inactive"],
        close_removed=values["close.on_state_change.removed"],
        close_renamed=values["close.on_state_change.renamed"],
        ignore_older=values["ignore_older"],
        message_max_bytes=values["message_max_bytes"],
        parsers=values["parsers"],
        harvester_limit=values["harvester_limit"],
        clean_removed=values["clean_removed"],
    )


def check_shared(values: SettingValues) -> None:
    """The checks of `paths` and `encoding`, which the log input shares."""
    paths = values["paths"]
    if paths is not None and not any(p.strip() for p in paths):
        values.error("paths", "must list at least one glob, e.g. /var/log/app/*.log")
    if values["encoding"].lower() not in SUPPORTED_ENCODINGS:
        values.error("encoding", f"{values['encoding']!r} is not supported; use utf-8 (or plain)")


def non_blank_paths(values: SettingValues) -> list[str]:
    return [p for p in values["paths"] or [] if p.strip()]


def paths_id(prefix: str, paths: list[str]) -> str:
    """An input id that stays the same while `paths` do, so registry state is found again after a restart."""
    digest = hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


def default_id(config: FilestreamConfig) -> str:
    return paths_id("filestream", config.paths)
