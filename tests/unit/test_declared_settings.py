"""Declared settings: one reading of every type and bound, with the messages `Section` gives."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    SIZE,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ignored,
    read_settings,
    rejected,
    section_list,
)
from forwarder.schema.section import Problem, Section

SETTINGS = (
    Setting("interval", DURATION, "5m", "how often", positive=True),
    Setting("grace", DURATION, "0", "how long", minimum=0),
    Setting("buffer", SIZE, "10KiB", "how much", positive=True),
    Setting("workers", INTEGER, 1, "how many", minimum=1, aliases=("worker",)),
    Setting("mode", STRING, "auto", "which", choices=("auto", "manual")),
    Setting("shared_value", STRING, None, "a credential without a secret-sounding name", secret=True),
    Setting("hosts", STRINGS, [], "where"),
    Setting("retry.backoff.init", DURATION, "1s", "nested two deep", positive=True),
    Setting("retry.enabled", BOOLEAN, True, "nested"),
    *ignored("buffer_size", "retry.jitter"),
    *rejected("proxy_url", message="is not supported here; remove it"),
)


def read(data: dict[str, Any], settings: tuple[Setting, ...] = SETTINGS) -> tuple[SettingValues, list[str]]:
    problems: list[Problem] = []
    section = Section(data, "inputs.0", "inputs.yml", problems)
    values = read_settings(section, settings)
    section.finish()
    return values, [str(p) for p in problems]


def test_absent_settings_take_their_default_written_in_config_syntax() -> None:
    values, problems = read({})
    assert problems == []
    assert (values["interval"], values["grace"], values["buffer"]) == (300.0, 0.0, 10240)
    assert (values["workers"], values["mode"], values["retry.backoff.init"], values["retry.enabled"]) == (
        1, "auto", 1.0, True)
    assert values["shared_value"] is None and values["buffer_size"] is None


def test_list_defaults_are_not_shared_between_readings() -> None:
    first, _ = read({})
    first["hosts"].append("changed")
    second, _ = read({})
    assert second["hosts"] == []


@pytest.mark.parametrize(("data", "expected"), [
    ({"interval": "0s"}, "inputs.yml: inputs.0.interval: must be a duration greater than 0"),
    ({"retry": {"backoff": {"init": 0}}}, "inputs.yml: inputs.0.retry.backoff.init: must be a duration greater than 0"),
    ({"grace": -5}, "inputs.yml: inputs.0.grace: must not be negative"),
    ({"buffer": 0}, "inputs.yml: inputs.0.buffer: must be greater than 0"),
    ({"buffer": "lots"}, "inputs.yml: inputs.0.buffer: 'lots' is not a size (use e.g. 10KiB, 20MiB) (got 'lots')"),
    ({"workers": 0}, "inputs.yml: inputs.0.workers: must be at least 1 (got 0)"),
    ({"mode": "sometimes"}, "inputs.yml: inputs.0.mode: must be one of auto, manual (got 'sometimes')"),
    ({"proxy_url": "http://proxy:3128"}, "inputs.yml: inputs.0.proxy_url: is not supported here; remove it"),
])
def test_each_problem_is_one_line_naming_the_key_path(data: dict[str, Any], expected: str) -> None:
    _, problems = read(data)
    assert problems == [expected]


def test_an_out_of_bounds_value_is_replaced_by_the_default() -> None:
    values, _ = read({"interval": "0s", "buffer": -1})
    assert (values["interval"], values["buffer"]) == (300.0, 10240)


def test_a_declared_secret_is_never_echoed() -> None:
    _, problems = read({"shared_value": {"nested": "hunter2-value"}})
    assert problems == ["inputs.yml: inputs.0.shared_value: expected a string (got a value that is not shown (secret))"]


def test_an_alias_is_read_when_the_name_is_not_set_and_errors_name_the_key_written() -> None:
    values, problems = read({"worker": 3})
    assert problems == [] and values["workers"] == 3
    values, problems = read({"workers": 2, "worker": 5})
    assert problems == [] and values["workers"] == 2
    _, problems = read({"worker": 0})
    assert problems == ["inputs.yml: inputs.0.worker: must be at least 1 (got 0)"]


def test_unknown_keys_get_a_suggestion_at_every_level() -> None:
    _, problems = read({"intervall": "1s", "retry": {"backof": {"init": "1s"}, "enabeld": True}})
    assert problems == [
        "inputs.yml: inputs.0.retry.backof: unknown setting (did you mean 'inputs.0.retry.backoff'?)",
        "inputs.yml: inputs.0.retry.enabeld: unknown setting (did you mean 'inputs.0.retry.enabled'?)",
        "inputs.yml: inputs.0.intervall: unknown setting (did you mean 'inputs.0.interval'?)",
    ]


def test_the_top_level_is_left_open_for_the_keys_every_input_shares() -> None:
    problems: list[Problem] = []
    section = Section({"interval": "1s", "tags": ["a"]}, "inputs.0", "inputs.yml", problems)
    read_settings(section, SETTINGS)
    assert problems == []
    section.ignore("tags")
    section.finish()
    assert problems == []


def test_ignored_keys_are_accepted_and_rejected_ones_only_when_set() -> None:
    _, problems = read({"buffer_size": 4096, "retry": {"jitter": "1s"}, "proxy_url": ""})
    assert problems == []


def test_an_unknown_key_is_reported_once_when_a_section_is_finished_twice() -> None:
    problems: list[Problem] = []
    section = Section({"intervl": "1s"}, "output.x", "forwarder.yml", problems)
    read_settings(section, SETTINGS)
    section.finish()
    section.finish()
    assert [str(p) for p in problems] == [
        "forwarder.yml: output.x.intervl: unknown setting (did you mean 'output.x.interval'?)"]


def test_cross_field_checks_report_through_the_values() -> None:
    values, _ = read({"retry": {"backoff": {"init": "2s"}}})
    values.error("retry.backoff.init", "must not be larger than interval")
    assert str(values.section("retry.backoff").problems[-1]) == (
        "inputs.yml: inputs.0.retry.backoff.init: must not be larger than interval")


def test_a_list_of_sections_is_read_item_by_item() -> None:
    item = (Setting("type", STRING, doc="which", choices=("a", "b")), Setting("limit", INTEGER, 10, "most"))
    settings = (Setting("stages", section_list("list of stages", item), [], "stages in order"),)
    values, problems = read({"stages": [{"type": "a"}, {"type": "c", "limt": 2}]}, settings)
    assert [(stage["type"], stage["limit"]) for stage in values["stages"]] == [("a", 10), (None, 10)]
    assert problems == [
        "inputs.yml: inputs.0.stages.1.type: must be one of a, b (got 'c')",
        "inputs.yml: inputs.0.stages.1.limt: unknown setting (did you mean 'inputs.0.stages.1.limit'?)",
    ]
