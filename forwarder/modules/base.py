"""What a module provides: turning one `- module: NAME` entry into inputs.

A module holds no I/O. It reads the entry's fileset keys and `var.*`
settings through the Section (so errors name the module file and key) and
returns, for each enabled fileset, the raw input mapping for an existing
input type plus the Filebeat module fields every event of that fileset gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from forwarder.config.section import Section


@dataclass
class FilesetInput:
    input_id: str
    section: Section
    module_fields: dict[str, Any]
    ingest_pipeline: str | None = None


class ModuleType(Protocol):
    name: str

    def expand(self, entry: Section) -> list[FilesetInput]: ...
