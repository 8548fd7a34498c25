"""What a module provides: turning one `- module: NAME` entry into inputs.

A module holds no I/O. It reads the entry's fileset keys and `var.*`
settings through the Section (so errors name the module file and key) and
returns, for each enabled fileset, the raw input mapping for an existing
input type plus the Filebeat module fields every event of that fileset gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from forwarder.pipeline.client import Processor
from forwarder.schema.section import Section


@dataclass
class FilesetInput:
    """One input a fileset needs: its raw settings (checked by the input type), and how its events are made.

    `processors` turn the input's records into the fileset's events (the ECS mapping, a parser for a
    syslog or file format); the pipeline runs them first, before the input's own and the global
    processors, so those see the fileset's fields.
    """

    input_id: str
    section: Section
    module_fields: dict[str, Any]
    ingest_pipeline: str | None = None
    processors: list[Processor] = field(default_factory=list)


class ModuleType(Protocol):
    name: str

    def expand(self, entry: Section) -> list[FilesetInput]: ...


def read_vars(
    section: Section, plain: Iterable[str], nested: Mapping[str, Iterable[str]] | None = None
) -> dict[str, Any]:
    """The `var.*` settings that are set; unknown ones are reported (with the closest known name) by finish()."""
    found: dict[str, Any] = {name: section.raw(name) for name in plain if section.has(name)}
    for group, names in (nested or {}).items():
        group_section = section.section(group)
        values = {name: group_section.raw(name) for name in names if group_section.has(name)}
        group_section.finish()
        if values:
            found[group] = values
    section.finish()
    return found


def merge_vars(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Module-wide settings overridden by a fileset's, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_vars(merged[key], value)
        else:
            merged[key] = value
    return merged
