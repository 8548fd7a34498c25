"""Input configs → ready-to-start input specs.

Inputs come from three places, as with Filebeat: `forwarder.inputs`, files
matched by `forwarder.config.inputs.path`, and module files matched by
`forwarder.config.modules.path` (each `- module: NAME` entry expands into one
input per enabled fileset). Every one ends up as an `InputSpec`: the input
type, its parsed config, and the pipeline settings shared by all input types.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forwarder.config.filebeat_keys import set_aside_input_keys
from forwarder.config.loader import Resolver, collect_secrets, expand_dotted, expand_variables, read_yaml
from forwarder.config.module_flags import ModuleFlags, apply_module_overrides, module_file_paths
from forwarder.inputs.base import InputType
from forwarder.modules.base import FilesetInput
from forwarder.pipeline.client import ClientSettings, Processor
from forwarder.pipeline.processors import build_processors
from forwarder.plugins import INPUTS, MODULES, PluginError, PluginProblem, PluginTable
from forwarder.schema.section import ConfigError, Problem, Section

COMMON_INPUT_KEYS = (
    "type", "id", "enabled", "tags", "fields", "fields_under_root", "processors",
    "pipeline", "publisher_pipeline",
)


@dataclass
class InputSpec:
    input_type: InputType
    config: Any
    client: ClientSettings


def parse_input(section: Section, position: int, fileset: FilesetInput | None = None) -> InputSpec | None:
    """One input mapping; None when it is disabled or has problems (recorded in the section)."""
    type_name = section.string("type", None)
    if not section.boolean("enabled", True):
        section.ignore(*section.data)
        return None
    if type_name is None:
        section.error("type", f"is required (one of {', '.join(INPUTS.names())})")
        return None
    input_type = _lookup(section, "type", INPUTS, type_name)
    if input_type is None:
        return None
    problems_before = len(section.problems)
    set_aside_input_keys(section, type_name)
    config = input_type.parse_config(section)
    explicit_id = section.string("id", None)
    tags = section.string_list("tags", [])
    fields = section.mapping("fields", {})
    under_root = section.boolean("fields_under_root", False)
    processors = build_processors(section.sections("processors"))
    pipeline = section.string("pipeline", fileset.ingest_pipeline if fileset else None)
    disable_host = section.section("publisher_pipeline").boolean("disable_host", False)
    section.ignore(*COMMON_INPUT_KEYS)
    section.finish()
    if len(section.problems) > problems_before:
        return None
    input_id = explicit_id or (input_type.default_id(config) if input_type.default_id else f"{type_name}-{position}")
    return InputSpec(input_type, config, ClientSettings(
        input_id=input_id,
        input_type=type_name,
        tags=tags,
        fields=fields,
        fields_under_root=under_root,
        processors=processors,
        disable_host=disable_host,
        module_fields=fileset.module_fields if fileset else {},
        module_processors=fileset.processors if fileset else _standalone_processors(input_type, config, section),
        ingest_pipeline=pipeline,
    ))


def _standalone_processors(input_type: InputType, config: Any, section: Section) -> list[Processor]:
    if input_type.standalone_processors is None:
        return []
    items = input_type.standalone_processors(config)
    return build_processors([Section(item, section.path, section.source, section.problems) for item in items])


def parse_input_list(sections: list[Section], start: int = 0) -> list[InputSpec]:
    specs = []
    for offset, section in enumerate(sections):
        spec = parse_input(section, start + offset)
        if spec is not None:
            specs.append(spec)
    return specs


@dataclass
class IncludedFiles:
    """Module and input files are read like the main file: same permission rule, same `${VAR}` lookup.

    Values of secret-named settings found in them are added to `secrets` for the log redactor.
    """

    strict_perms: bool
    resolve: Resolver
    problems: list[Problem]
    secrets: list[str]
    module_flags: ModuleFlags = field(default_factory=ModuleFlags)


def load_input_files(pattern: str, files: IncludedFiles, start: int) -> list[InputSpec]:
    """Files of `forwarder.config.inputs.path`: each a YAML list of inputs."""
    specs: list[InputSpec] = []
    for name in sorted(glob.glob(pattern)):
        path = Path(name)
        data = _read_list(path, files)
        sections = [Section(expand_dotted(item), str(i), str(path), files.problems) for i, item in enumerate(data)]
        specs.extend(parse_input_list(sections, start + len(specs)))
    return specs


def load_module_files(pattern: str, files: IncludedFiles, enabled_files: bool = True) -> list[InputSpec]:
    """Enabled module files (`modules.d/*.yml`, plus those `--modules` names): YAML lists of `- module: NAME`."""
    specs: list[InputSpec] = []
    for path in module_file_paths(pattern, files.module_flags, files.problems, enabled_files):
        for index, item in enumerate(_read_list(path, files)):
            entry = apply_module_overrides(expand_dotted(item), files.module_flags)
            files.secrets.extend(collect_secrets(entry))
            specs.extend(parse_module_entry(Section(entry, str(index), str(path), files.problems)))
    return specs


def parse_module_entry(section: Section) -> list[InputSpec]:
    module_name = section.string("module", None)
    if module_name is None:
        section.error("module", "is required: each entry of a module file starts with `- module: NAME`")
        return []
    module_type = _lookup(section, "module", MODULES, module_name)
    if module_type is None:
        return []
    specs = []
    for fileset_input in module_type.expand(section):
        spec = parse_input(fileset_input.section, 0, fileset_input)
        if spec is not None:
            spec.client.input_id = fileset_input.input_id
            specs.append(spec)
    return specs


def _lookup(section: Section, key: str, table: PluginTable, name: str) -> Any:
    """The type a config names; None (and the problem recorded at `key`) when it is unknown or broken."""
    try:
        return table.get(name)
    except KeyError:
        section.error(key, table.unknown(name))
    except PluginError as error:
        section.problems.append(PluginProblem(section.source, section.key_path(key), str(error)))
    return None


def _read_list(path: Path, files: IncludedFiles) -> list[Any]:
    try:
        data = read_yaml(path, files.strict_perms)
    except ConfigError as exc:
        files.problems.extend(exc.problems)
        return []
    if data is None:
        return []
    if not isinstance(data, list):
        files.problems.append(Problem(str(path), "", "expected a YAML list at the top level"))
        return []
    expanded = expand_variables(data, files.resolve, str(path), "", files.problems)
    files.secrets.extend(collect_secrets(expanded))
    return expanded
