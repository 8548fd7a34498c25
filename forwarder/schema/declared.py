"""Settings declared once, as data: read from a `Section` and rendered into the README.

An input, output or processor lists its settings as a tuple of `Setting`
(name, type, default, doc line, bounds, choices, secret). `read_settings`
reads a section against that tuple and returns the typed values; the README
tables are rendered from the same tuple (`tools/readme_settings.py`), so the
documented defaults and bounds are the ones the code applies.

Names are the keys the user writes, dotted for nested sections
(`prospector.scanner.check_interval`): each nested section is read once and
its unknown keys are reported, with a "did you mean", when reading ends. The
input's own top level is left open, because the caller also reads the keys
every input shares before it reports unknown ones.

What a declaration cannot say (a check that spans two settings, a value that
needs a network-free parse such as a host list) stays plain code after
`read_settings`, reporting through `SettingValues.error`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from forwarder.schema.notices import report_ignored
from forwarder.schema.section import REQUIRED, Section, parse_duration, parse_size

Reader = Callable[[Section, str, "Setting", Any], Any]


@dataclass(frozen=True)
class ValueType:
    """One kind of value: how a key is read from a section, and its name in the README's type column.

    `read(section, key, setting, default)` returns the value, or reports a
    problem on `section` and returns the default. `parse_default` turns a
    default written in config syntax (`"5m"`, `"10MiB"`) into the value.
    """

    name: str
    read: Reader
    parse_default: Callable[[Any], Any] = field(default=lambda value: value)


@dataclass(frozen=True)
class Setting:
    name: str
    type: ValueType
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    # Durations and sizes: greater than 0 (a zero interval or buffer makes no sense).
    positive: bool = False
    choices: tuple[str, ...] | None = None
    # Never shown in an error message, whatever its name.
    secret: bool = False
    # Other keys with the same meaning, read when `name` is not set (Filebeat spells some two ways).
    aliases: tuple[str, ...] = ()
    # How the README shows the default when the value alone would mislead ("derived from `paths`").
    doc_default: str | None = None

    @property
    def default_value(self) -> Any:
        if self.default is REQUIRED or self.default is None:
            return self.default
        value = self.type.parse_default(self.default)
        return list(value) if isinstance(value, list) else value

    def path(self) -> tuple[str, str]:
        """(nested section, key): `("prospector.scanner", "check_interval")`."""
        prefix, _, key = self.name.rpartition(".")
        return prefix, key


class SettingValues(Mapping[str, Any]):
    """The values read, by setting name, plus the sections they came from (for checks after reading)."""

    def __init__(self, values: dict[str, Any], sections: dict[str, Section]) -> None:
        self._values = values
        self._sections = sections

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def section(self, prefix: str = "") -> Section:
        """The section at `prefix` (`""` = the one read, `"ssl"` = its nested `ssl`)."""
        return self._sections[prefix]

    def error(self, name: str, message: str) -> None:
        """Reports a problem with the setting `name` (dotted), under its full key path."""
        prefix, _, key = name.rpartition(".")
        self._sections[prefix].error(key, message)


def read_settings(section: Section, settings: tuple[Setting, ...]) -> SettingValues:
    """Reads every declared setting, in order; nested sections are finished, `section` itself is not."""
    sections: dict[str, Section] = {"": section}
    values: dict[str, Any] = {}
    for setting in settings:
        prefix, key = setting.path()
        nested = _nested(sections, prefix)
        present = [k for k in (key, *setting.aliases) if nested.data.get(k) is not None]
        written = present[0] if present else key
        nested.ignore(key, *setting.aliases)
        values[setting.name] = setting.type.read(nested, written, setting, setting.default_value)
    for prefix in reversed(list(sections)):
        if prefix:
            sections[prefix].finish()
    return SettingValues(values, sections)


def _nested(sections: dict[str, Section], prefix: str) -> Section:
    if prefix not in sections:
        parent, _, key = prefix.rpartition(".")
        sections[prefix] = _nested(sections, parent).section(key)
    return sections[prefix]


def _bounded(section: Section, key: str, setting: Setting, value: Any, default: Any, what: str) -> Any:
    """The one bounds check of durations and sizes; an out-of-bounds value is reported and the default kept."""
    if value is None:
        return value
    if setting.positive and value <= 0:
        section.error(key, f"must be {what}greater than 0")
        return default
    if setting.minimum is not None and value < setting.minimum:
        section.error(key, "must not be negative" if setting.minimum == 0 else f"must be at least {setting.minimum}")
        return default
    if setting.maximum is not None and value > setting.maximum:
        section.error(key, f"must be at most {setting.maximum}")
        return default
    return value


def _read_duration(section: Section, key: str, setting: Setting, default: Any) -> Any:
    value = section.duration(key, default, secret=setting.secret)
    return _bounded(section, key, setting, value, default, "a duration ")


def _read_size(section: Section, key: str, setting: Setting, default: Any) -> Any:
    return _bounded(section, key, setting, section.size(key, default, secret=setting.secret), default, "")


def _read_regexes(section: Section, key: str, setting: Setting, default: Any) -> list[re.Pattern[str]]:
    compiled = []
    for text in section.string_list(key, default) or []:
        try:
            compiled.append(re.compile(text))
        except re.error as exc:
            section.error(key, f"invalid regular expression {text!r}: {exc}")
    return compiled


def _read_ignored(section: Section, key: str, setting: Setting, default: Any) -> None:
    if section.data.get(key) is not None:
        report_ignored(section.source, section.key_path(key), setting.doc)
    return None


def _read_rejected(section: Section, key: str, setting: Setting, default: Any) -> None:
    if section.data.get(key) not in (None, ""):
        section.error(key, setting.doc)


STRING = ValueType("string", lambda s, k, setting, d: s.string(k, d, choices=setting.choices, secret=setting.secret))
BOOLEAN = ValueType("boolean", lambda s, k, setting, d: s.boolean(k, d))
INTEGER = ValueType("integer", lambda s, k, setting, d: s.integer(k, d, setting.minimum, setting.maximum))
NUMBER = ValueType("number", lambda s, k, setting, d: s.number(k, d))
DURATION = ValueType("duration", _read_duration, parse_duration)
SIZE = ValueType("size", _read_size, parse_size)
STRINGS = ValueType("list of strings", lambda s, k, setting, d: s.string_list(k, d))
REGEXES = ValueType("list of regular expressions", _read_regexes)
MAPPING = ValueType("mapping", lambda s, k, setting, d: s.mapping(k, d))
# Accepted so Filebeat configs load, without effect here; the doc line says why (reported at start when set).
IGNORED = ValueType("ignored", _read_ignored)
# Recognised, refused with the doc line as the error: something that must not be silently ignored.
REJECTED = ValueType("not supported", _read_rejected)


def section_list(name: str, settings: tuple[Setting, ...]) -> ValueType:
    """A list of mappings (`sanitizers: [{type: ...}]`), each read against `settings` at `key.N`."""

    def read(section: Section, key: str, setting: Setting, default: Any) -> list[SettingValues]:
        items = []
        for item in section.sections(key):
            items.append(read_settings(item, settings))
            item.finish()
        return items

    return ValueType(name, read)


def ignored(*names: str, doc: str = "accepted for Filebeat compatibility, without effect") -> tuple[Setting, ...]:
    return tuple(Setting(name, IGNORED, None, doc) for name in names)


def rejected(*names: str, message: str) -> tuple[Setting, ...]:
    return tuple(Setting(name, REJECTED, None, message) for name in names)
