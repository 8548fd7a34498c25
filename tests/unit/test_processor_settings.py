"""Every built-in processor's options are declared, documented in the README, and accepted as documented."""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section

ROOT = Path(__file__).resolve().parents[2]


def readme_script() -> Any:
    spec = importlib.util.spec_from_file_location("readme_settings", ROOT / "tools" / "readme_settings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built_in_processors() -> list[str]:
    return sorted(point.name for point in entry_points(group="forwarder.processors")
                  if point.value.startswith("forwarder."))


SCRIPT = readme_script()
PROCESSOR_TABLES = {name.removeprefix("processor-"): source for name, source in SCRIPT.TABLES.items()
                    if name.startswith("processor-")}

# A valid value of each type the processor tables show, to write every documented key at once.
SAMPLES: dict[str, Any] = {
    "boolean": True,
    "string": "parsed",
    "integer": 2,
    "mapping": {"site": "paris"},
    "list of strings": ["a", "b"],
    "list of fields": ["message"],
    "list of `{from, to}`": [{"from": "message", "to": "copied"}],
    "ignored": {"enabled": True},
    "mapping of tenant id to name": {"11111111-2222-3333-4444-555555555555": "contoso.onmicrosoft.com"},
    "list of filesets": ["signinlogs", "auditlogs"],
    "list of Umbrella log types": ["dnslogs", "auditlogs"],
    "number": 1.5,
    # Refused keys: documented so that a Filebeat config gets a clear error, never accepted with a value.
    "not supported": None,
    "duration": "2s",
    "list of `{from, to, type}`": [{"from": "message", "to": "copied", "type": "string"}],
    "list of `{field, pattern, replacement}`": [{"field": "message", "pattern": "a", "replacement": "b"}],
    "dissect pattern": "%{a} %{b}",
    "mapping of field → field": {"message": "decoded"},
    "character": ";",
    "time zone": "Europe/Paris",
    "list of `{serial_number, hostname}`": [{"serial_number": "1234567890123456", "hostname": "fw1.example"}],
}
# Values that a processor needs instead of its type's sample (a format of its own, or one of two exclusive keys
# left unset with None).
OVERRIDES: dict[str, dict[str, Any]] = {
    "truncate_fields": {"max_characters": None},
    "script": {"source": "function process(event) {}", "file": None, "files": None},
    "timestamp": {"timezone": "Europe/Paris", "layouts": ["2006-01-02"], "test": ["2024-01-31"]},
    "add_network_direction": {"internal_networks": ["private", "10.0.0.0/8"]},
    "rate_limit": {"limit": "100/s"},
    "add_cloud_metadata": {"providers": ["aws", "azure"]},
}


def problems_of(name: str, options: Any) -> list[str]:
    problems: list = []
    build_processors([Section({name: options}, "processors.0", "forwarder.yml", problems)])
    return [str(problem) for problem in problems]


def test_every_built_in_processor_with_options_has_a_readme_table() -> None:
    processors = built_in_processors()
    assert "rename" in processors and "azure_ecs" in processors
    # drop_event has no option of its own (only `when`), so no table: any option is refused.
    assert sorted(PROCESSOR_TABLES) == [name for name in processors if name != "drop_event"]
    assert problems_of("drop_event", {"fields": ["a"]}) == [
        "forwarder.yml: processors.0.drop_event.fields: unknown setting"]


@pytest.mark.parametrize("name", sorted(PROCESSOR_TABLES))
def test_every_documented_key_is_accepted(name: str) -> None:
    settings = SCRIPT.declared_settings(PROCESSOR_TABLES[name])
    dotted = {setting.name: setting.choices[0] if setting.choices else SAMPLES[setting.type.name]
              for setting in settings}
    dotted.update(OVERRIDES.get(name, {}))
    options = expand_dotted(dotted)
    options["when"] = {"has_fields": ["message"]}
    assert problems_of(name, options) == []


def test_a_misspelled_key_is_pointed_at_the_declared_one() -> None:
    assert problems_of("decode_json_fields", {"fields": ["message"], "max_dept": 2}) == [
        "forwarder.yml: processors.0.decode_json_fields.max_dept: unknown setting (did you mean "
        "'processors.0.decode_json_fields.max_depth'?)"]
    assert problems_of("azure_ecs", {"filesets": ["signinlogs", "signins"], "normalise": False}) == [
        "forwarder.yml: processors.0.azure_ecs.filesets: unknown fileset 'signins' (known: activitylogs, "
        "platformlogs, auditlogs, signinlogs, identity_protection, provisioning, graphactivitylogs)",
        "forwarder.yml: processors.0.azure_ecs.normalise: unknown setting (did you mean "
        "'processors.0.azure_ecs.normalize'?)"]
