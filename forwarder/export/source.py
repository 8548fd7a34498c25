"""What an export reads its settings from: the files, keystore and `${VAR}`s `forwarder run` uses.

The whole configuration is loaded and validated exactly as for a run, then the
module's entry is read once more with only the exported fileset switched on:
a site that ships audit logs but not sign-ins can still export sign-ins with
the module's credentials, and the export's events get the same module fields,
tags, processors and agent identity as shipped ones. Nothing under path.data
is written (the agent id is read from meta.json when a run created it).
"""

from __future__ import annotations

import glob
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from forwarder.config.inputs import parse_module_entry
from forwarder.config.loader import Resolver, collect_secrets, expand_dotted, expand_variables, read_yaml
from forwarder.config.settings import CliOptions, load_raw_config, load_settings
from forwarder.inputs.graph_config import GraphConfig
from forwarder.modules.entraid import FILESETS
from forwarder.pipeline.client import AgentInfo, ClientSettings, Processor
from forwarder.schema.section import ConfigError, Problem, Section


@dataclass
class ExportSource:
    """The exported fileset's input settings plus what the pipeline adds to its events."""

    config: GraphConfig
    client: ClientSettings
    processors: list[Processor]
    agent: AgentInfo
    index: str
    module_file: Path
    secrets: list[str] = field(default_factory=list, repr=False)


def load_export_source(options: CliOptions, module: str, fileset: str) -> ExportSource:
    """Raises ConfigError (one problem per line, naming file and key) for anything the user must fix."""
    settings = load_settings(options)
    _, raw_config, _, _, resolve = load_raw_config(options)
    problems: list[Problem] = []
    found = _fileset_input(settings.modules_glob, module, fileset, options.strict_perms, resolve, problems)
    if found is None:
        raise ConfigError([Problem(settings.modules_glob, "", f"no `- module: {module}` entry in the enabled module "
                                   f"files: run `forwarder modules enable {module}` and set its credentials there")])
    client, config, path, module_secrets = found
    global_tags = Section(raw_config, "", str(settings.config_file), []).string_list("tags", [])
    client.tags = client.tags + [tag for tag in global_tags if tag not in client.tags]
    agent = AgentInfo(name=settings.name, id=_agent_id(settings.paths.data))
    return ExportSource(
        config=config, client=client, processors=settings.processors, agent=agent,
        index=settings.output_type.index(settings.output_config), module_file=path,
        secrets=settings.secrets + module_secrets,
    )


def _fileset_input(
    modules_glob: str, module: str, fileset: str, strict_perms: bool, resolve: Resolver, problems: list[Problem]
) -> tuple[ClientSettings, GraphConfig, Path, list[str]] | None:
    """The first `- module: NAME` entry of the enabled module files, parsed with only `fileset` enabled."""
    for name in sorted(glob.glob(modules_glob)):
        path = Path(name)
        data = read_yaml(path, strict_perms)
        if not isinstance(data, list):
            continue
        for index, item in enumerate(data):
            entry = expand_dotted(item)
            if not isinstance(entry, dict) or entry.get("module") != module:
                continue
            entry = expand_variables(entry, resolve, str(path), str(index), problems)
            for candidate in FILESETS:
                block = entry.get(candidate)
                entry[candidate] = {**(block if isinstance(block, dict) else {}), "enabled": candidate == fileset}
            specs = parse_module_entry(Section(entry, str(index), str(path), problems))
            if problems or not specs:
                raise ConfigError(problems or [Problem(str(path), f"{index}.{fileset}", "cannot be exported")])
            return specs[0].client, specs[0].config, path, collect_secrets(entry)
    return None


def _agent_id(data_path: Path) -> str:
    """`agent.id` as shipped events carry it, when a run has stored one; a fresh one otherwise (not saved)."""
    try:
        return str(json.loads((Path(data_path) / "meta.json").read_text())["uuid"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(uuid.uuid4())

