"""The settings of the filestream input, read from Filebeat's filestream keys.

`FilestreamConfig` is also what the deprecated `log` input translates its own
keys into, so the readers of keys both inputs share (paths, encoding, regular
expression lists, the byte limit) live here and report errors under whichever
key the user actually wrote.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from forwarder.schema.section import Section
from forwarder.inputs.line_parsers import ParserConfig, parse_parsers

DEFAULT_MESSAGE_MAX_BYTES = 10 * 1024 * 1024
SUPPORTED_ENCODINGS = ("utf-8", "utf8", "plain")


@dataclass
class FilestreamConfig:
    paths: list[str]
    exclude_files: list[re.Pattern[str]] = field(default_factory=list)
    include_files: list[re.Pattern[str]] = field(default_factory=list)
    exclude_lines: list[re.Pattern[str]] = field(default_factory=list)
    include_lines: list[re.Pattern[str]] = field(default_factory=list)
    check_interval: float = 10.0
    symlinks: bool = False
    close_inactive: float = 300.0
    close_removed: bool = True
    close_renamed: bool = False
    ignore_older: float = 0.0
    message_max_bytes: int = DEFAULT_MESSAGE_MAX_BYTES
    parsers: list[ParserConfig] = field(default_factory=list)
    harvester_limit: int = 0
    clean_removed: bool = True


def parse_config(section: Section) -> FilestreamConfig:
    paths = read_paths(section)
    prospector = section.section("prospector")
    scanner = prospector.section("scanner")
    close = section.section("close")
    on_state_change = close.section("on_state_change")
    check_encoding(section)
    identity = section.raw("file_identity")
    if identity is not None and (not isinstance(identity, dict) or set(identity) - {"native"}):
        section.error("file_identity", "only file_identity.native (device and inode) is supported")
    config = FilestreamConfig(
        paths=paths,
        # `exclude_files`/`include_files` are the log input's spelling, still common in filestream configs.
        exclude_files=regexes(section, "exclude_files") + regexes(scanner, "exclude_files"),
        include_files=regexes(section, "include_files") + regexes(scanner, "include_files"),
        exclude_lines=regexes(section, "exclude_lines"),
        include_lines=regexes(section, "include_lines"),
        check_interval=positive_duration(scanner, "check_interval", 10.0),
        symlinks=scanner.boolean("symlinks", False),
        close_inactive=positive_duration(on_state_change, "inactive", 300.0),
        close_removed=on_state_change.boolean("removed", True),
        close_renamed=on_state_change.boolean("renamed", False),
        ignore_older=section.duration("ignore_older", 0.0),
        message_max_bytes=message_max_bytes(section, "message_max_bytes"),
        parsers=parse_parsers(section),
        harvester_limit=section.integer("harvester_limit", 0, minimum=0),
        clean_removed=section.boolean("clean_removed", True),
    )
    # Tuning knobs of Filebeat's Go reader that have no counterpart here.
    section.ignore("buffer_size", "backoff")
    on_state_change.ignore("check_interval")
    for nested in (scanner, prospector, on_state_change, close):
        nested.finish()
    return config


def read_paths(section: Section) -> list[str]:
    """The required `paths` globs, blank entries left out."""
    paths = section.string_list("paths")
    if paths is not None and not any(p.strip() for p in paths):
        section.error("paths", "must list at least one glob, e.g. /var/log/app/*.log")
    return [p for p in paths or [] if p.strip()]


def check_encoding(section: Section) -> None:
    encoding = section.string("encoding", "utf-8")
    if encoding.lower() not in SUPPORTED_ENCODINGS:
        section.error("encoding", f"{encoding!r} is not supported; use utf-8 (or plain)")


def message_max_bytes(section: Section, key: str) -> int:
    value = section.size(key, DEFAULT_MESSAGE_MAX_BYTES)
    if value <= 0:
        section.error(key, "must be greater than 0")
        return DEFAULT_MESSAGE_MAX_BYTES
    return value


def positive_duration(section: Section, key: str, default: float) -> float:
    value = section.duration(key, default)
    if value <= 0:
        section.error(key, "must be a duration greater than 0")
        return default
    return value


def regexes(section: Section, key: str) -> list[re.Pattern[str]]:
    compiled = []
    for text in section.string_list(key, []):
        try:
            compiled.append(re.compile(text))
        except re.error as exc:
            section.error(key, f"invalid regular expression {text!r}: {exc}")
    return compiled


def paths_id(prefix: str, paths: list[str]) -> str:
    """An input id that stays the same while `paths` do, so registry state is found again after a restart."""
    digest = hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


def default_id(config: FilestreamConfig) -> str:
    return paths_id("filestream", config.paths)
