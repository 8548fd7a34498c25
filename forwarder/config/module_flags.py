"""Filebeat's module flags for one run: `--modules o365,azure` and `-M "o365.audit.var.api.poll_interval=1m"`.

`--modules NAME,...` runs those modules' files from modules.d for this run
only, enabled or not (`NAME.yml`, else `NAME.yml.disabled`), without renaming
anything: a site can try a module before `forwarder modules enable` it.
`-M MODULE.REST=VALUE` sets `REST` (dotted, value parsed as YAML like `-E`) in
every entry of MODULE, wherever that entry comes from; an `-M` naming a module
that does not run this time is said once at start, since it has no effect.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from forwarder.config.loader import deep_merge, expand_dotted, load_yaml_text
from forwarder.schema.section import Problem


@dataclass(frozen=True)
class ModuleOverride:
    text: str
    module: str
    values: dict[str, Any]


@dataclass
class ModuleFlags:
    names: list[str] = field(default_factory=list)
    overrides: list[ModuleOverride] = field(default_factory=list)
    applied: set[str] = field(default_factory=set)


def parse_module_flags(names: list[str], assignments: list[str], problems: list[Problem]) -> ModuleFlags:
    """The flags as given; a malformed `-M` is one problem naming it."""
    modules = [name.strip() for text in names for name in text.split(",") if name.strip()]
    overrides = []
    for text in assignments:
        key, sep, raw = text.partition("=")
        module, dot, rest = key.strip().partition(".")
        if not sep or not dot or not module or not rest:
            # The key only: the value may be a secret (`-M o365client_secret=…`).
            problems.append(Problem("-M", key.strip(),
                                    "expected MODULE.FILESET.var.NAME=VALUE (or MODULE.var.NAME=VALUE)"))
            continue
        try:
            value = load_yaml_text(raw) if raw.strip() else ""
        except (yaml.YAMLError, RecursionError):
            value = raw
        overrides.append(ModuleOverride(text, module, expand_dotted({rest: value})))
    return ModuleFlags(modules, overrides)


def module_file_paths(pattern: str, flags: ModuleFlags, problems: list[Problem], enabled_files: bool = True
                      ) -> list[Path]:
    """The enabled module files (unless `filebeat.config.modules.enabled: false`), then each `--modules` file."""
    paths = [Path(name) for name in sorted(glob.glob(pattern))] if enabled_files else []
    directory = Path(pattern).parent
    for name in flags.names:
        enabled, disabled = directory / f"{name}.yml", directory / f"{name}.yml.disabled"
        if enabled in paths:
            continue
        if enabled.is_file() or disabled.is_file():
            paths.append(enabled if enabled.is_file() else disabled)
        else:
            problems.append(Problem("--modules", name, f"no module file {enabled.name} or {disabled.name} in "
                                                       f"{directory} (see `forwarder modules list`)"))
    return paths


def apply_module_overrides(entry: Any, flags: ModuleFlags) -> Any:
    """`entry` (one `- module: NAME` mapping, dotted keys expanded) with the `-M` values for its module."""
    if not isinstance(entry, dict):
        return entry
    for override in flags.overrides:
        if entry.get("module") == override.module:
            deep_merge(entry, expand_dotted(override.values))
            flags.applied.add(override.text)
    return entry


def unused_override_warnings(flags: ModuleFlags) -> list[str]:
    return [f"-M {override.text.partition('=')[0]}: module {override.module} does not run (enable it in "
            "modules.d or name it in --modules); the override has no effect"
            for override in flags.overrides if override.text not in flags.applied]
