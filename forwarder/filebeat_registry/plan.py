"""What an import of Filebeat's registry would write into ours, and what it leaves out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forwarder.config.inputs import InputSpec
from forwarder.filebeat_registry.cursor_states import O365_PREFIX, S3_PREFIX, map_o365_cursor, map_s3_state
from forwarder.filebeat_registry.file_states import (
    FILESTREAM_PREFIX,
    LOG_PREFIX,
    InputFiles,
    map_file_state,
    our_file_position,
    parse_file_state,
)
from forwarder.filebeat_registry.memlog import find_store, read_store

FILE_INPUT_TYPES = ("filestream", "log")
# Written with every import, so a later start with our registry otherwise empty does not import a second time.
IMPORT_MARKER_KEY = "filebeat_registry_import"
EVENTHUB_NOTE = ("azure-eventhub positions are not in Filebeat's registry but in its checkpoint blob container; "
                 "the forwarder reads Filebeat's (v1) checkpoint blobs there itself when it uses the same "
                 "storage account, container and consumer group")


@dataclass
class ImportPlan:
    store: Path
    entries: dict[str, Any] = field(default_factory=dict)
    # Per key of ours: what is imported there, and from which Filebeat key.
    descriptions: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    not_imported: list[str] = field(default_factory=list)

    @property
    def imported(self) -> list[str]:
        return list(self.descriptions.values())

    def add(self, key: str, value: Any, description: str, origin: str = "") -> None:
        self.entries[key] = value
        self.descriptions[key] = description
        self.origins[key] = origin

    def refuse(self, filebeat_key: str, reason: str) -> None:
        self.not_imported.append(f"{filebeat_key}: {reason}")

    def report_lines(self, dry_run: bool) -> list[str]:
        verb = "would import" if dry_run else "imported"
        lines = [f"Filebeat registry {self.store}: {verb} {len(self.imported)} position(s), "
                 f"{len(self.not_imported)} not imported"]
        lines += [f"  {verb}: {line}" for line in self.imported]
        lines += [f"  not imported: {line}" for line in self.not_imported]
        lines.append(f"  note: {EVENTHUB_NOTE}")
        return lines


def plan_import(path: Path, specs: list[InputSpec]) -> ImportPlan:
    """Raises MemlogError when the registry is missing or damaged: then nothing may be imported."""
    store = find_store(path)
    states = read_store(store)
    plan = ImportPlan(store)
    file_inputs = [InputFiles.scan(spec) for spec in specs if spec.client.input_type in FILE_INPUT_TYPES]
    for key in sorted(states):
        value = states[key]
        if key.startswith((LOG_PREFIX, FILESTREAM_PREFIX)):
            _plan_file_state(plan, key, value, file_inputs)
        elif key.startswith(O365_PREFIX):
            _plan_mapped(plan, key, map_o365_cursor(key, value, specs))
        elif key.startswith(S3_PREFIX):
            _plan_mapped(plan, key, map_s3_state(value, specs))
        else:
            plan.refuse(key, f"the {key.split('::', 1)[0]!r} state is not one this forwarder can carry over")
    return plan


def _plan_mapped(plan: ImportPlan, key: str, mapped: tuple[str, Any, str] | str | None) -> None:
    if isinstance(mapped, str):
        plan.refuse(key, mapped)
    elif mapped is not None:
        plan.add(*mapped)


def _plan_file_state(plan: ImportPlan, key: str, value: dict[str, Any], inputs: list[InputFiles]) -> None:
    state = parse_file_state(key, value)
    if state is None:
        return
    if isinstance(state, str):
        plan.refuse(key, state)
        return
    mapped = map_file_state(state, inputs)
    if isinstance(mapped, str):
        plan.refuse(f"{key} ({state.source})" if state.source else key, mapped)
        return
    files, identity, found = mapped
    our_key = files.spec.client.key_prefix + identity
    earlier = plan.entries.get(our_key)
    if earlier is not None:
        # Two Filebeat states of one file for one input (an id added later, a log state taken over):
        # the smaller offset may re-send a little, the larger could skip what was never shipped.
        previous = plan.origins[our_key]
        if earlier["offset"] <= state.offset:
            plan.refuse(key, f"{previous} names the same file with a smaller offset, which is kept")
            return
        plan.refuse(previous, f"{key} names the same file with a smaller offset, which is kept")
    description = (f"{files.spec.client.input_type} {files.spec.client.input_id!r} {found.path} "
                   f"(device {found.stat.st_dev} inode {found.stat.st_ino}) from offset {state.offset}")
    plan.add(our_key, our_file_position(found, state.offset), description, key)


def marker(plan: ImportPlan, when: float) -> dict[str, Any]:
    return {IMPORT_MARKER_KEY: {"from": str(plan.store), "at": when, "positions": len(plan.imported)}}
