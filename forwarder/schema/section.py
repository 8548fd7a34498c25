"""Typed, path-aware reading of one config mapping.

Every config dataclass is built through a `Section`, so every problem the user
can cause is reported as `file: key.path: what is wrong`, unknown keys are
found with a suggestion for the nearest known key, and all problems of a file
are collected before anything starts (one line each, never a traceback).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

REQUIRED = object()

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


# Setting names whose values are secrets: never echoed in an error, always redacted from logs.
SECRET_KEY_WORDS = (
    "password", "passphrase", "secret", "token", "connection_string", "api_key", "account_key", "sas", "key_data",
)


# Whole setting names that are secrets but too short to look for inside other names: `key` (a private key,
# PEM), `auth` (`cloud.auth: user:password`).
SECRET_KEY_NAMES = ("key", "auth")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_KEY_WORDS) or lowered.rsplit(".", 1)[-1] in SECRET_KEY_NAMES


@dataclass(frozen=True)
class Problem:
    source: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found; `str()` gives one line per problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def parse_duration(value: Any) -> float:
    """Go-style durations (`1m30s`, `168h`) plus `d`; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 24h")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(" ", "")
    if not text:
        raise ValueError("expected a duration such as 30s, 5m or 24h")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 24h)") from None
    return total


def parse_size(value: Any) -> int:
    """Byte sizes such as `10KiB`, `20MiB`, `10MB` (binary multiples) or a bare integer."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10KiB or 20MiB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size (use e.g. 10KiB, 20MiB)")
    unit = (match.group(2) or "").lower()[:1]
    if unit == "b":
        unit = ""
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


class Section:
    """A view of one mapping at `path` inside config file `source`."""

    def __init__(self, data: Any, path: str, source: str, problems: list[Problem]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(Problem(source, path, f"expected a mapping, got {type(data).__name__}"))
            data = {}
        self.data: dict[str, Any] = data
        self.path = path
        self.source = source
        self.problems = problems
        self._seen: set[str] = set()
        self._reported_unknown: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, self.key_path(key) if key else self.path, message))

    def has(self, key: str) -> bool:
        self._seen.add(key)
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self.data.get(key, default)

    def ignore(self, *keys: str) -> None:
        """Marks keys as known without reading them (accepted for compatibility)."""
        self._seen.update(keys)

    def _typed(self, key: str, default: Any, convert: Callable[[Any], Any], what: str, secret: bool = False) -> Any:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is REQUIRED:
                self.error(key, f"is required ({what})")
                return None
            return default
        try:
            return convert(self.data[key])
        except (TypeError, ValueError) as exc:
            detail = str(exc) if str(exc) else f"expected {what}"
            shown = "a value that is not shown (secret)" if secret or is_secret_key(key) else repr(self.data[key])
            self.error(key, f"{detail} (got {shown})")
            return default if default is not REQUIRED else None

    def string(self, key: str, default: Any = REQUIRED, choices: Iterable[str] | None = None,
               secret: bool = False) -> Any:
        allowed = list(choices) if choices is not None else None

        def convert(value: Any) -> str:
            if isinstance(value, (dict, list)):
                raise TypeError("expected a string")
            text = str(value)
            if allowed is not None and text not in allowed:
                raise ValueError(f"must be one of {', '.join(allowed)}")
            return text

        return self._typed(key, default, convert, "a string", secret)

    def boolean(self, key: str, default: Any = REQUIRED) -> Any:
        def convert(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise TypeError("expected true or false")

        return self._typed(key, default, convert, "true or false")

    def integer(self, key: str, default: Any = REQUIRED, minimum: int | None = None, maximum: int | None = None) -> Any:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise TypeError("expected an integer")
            number = int(value)
            if minimum is not None and number < minimum:
                raise ValueError(f"must be at least {minimum}")
            if maximum is not None and number > maximum:
                raise ValueError(f"must be at most {maximum}")
            return number

        return self._typed(key, default, convert, "an integer")

    def number(self, key: str, default: Any = REQUIRED) -> Any:
        def convert(value: Any) -> float:
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return float(value)

        return self._typed(key, default, convert, "a number")

    def duration(self, key: str, default: Any = REQUIRED, secret: bool = False) -> Any:
        return self._typed(key, default, parse_duration, "a duration such as 30s", secret)

    def size(self, key: str, default: Any = REQUIRED, secret: bool = False) -> Any:
        return self._typed(key, default, parse_size, "a size such as 10KiB", secret)

    def string_list(self, key: str, default: Any = REQUIRED) -> Any:
        def convert(value: Any) -> list[str]:
            if isinstance(value, str):
                return [value]
            if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
                raise TypeError("expected a list of strings")
            return [str(v) for v in value]

        return self._typed(key, default, convert, "a list of strings")

    def mapping(self, key: str, default: Any = REQUIRED) -> Any:
        def convert(value: Any) -> dict:
            if not isinstance(value, dict):
                raise TypeError("expected a mapping")
            return value

        return self._typed(key, default, convert, "a mapping")

    def section(self, key: str) -> Section:
        self._seen.add(key)
        return Section(self.data.get(key), self.key_path(key), self.source, self.problems)

    def sections(self, key: str) -> list[Section]:
        """A list of mappings, each as a Section at `key.N`."""
        self._seen.add(key)
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, "expected a list")
            return []
        return [Section(item, f"{self.key_path(key)}.{i}", self.source, self.problems) for i, item in enumerate(value)]

    def finish(self, known_elsewhere: Iterable[str] = ()) -> None:
        """Reports every key that was never read, suggesting the closest known one.

        Each unknown key is reported once, even when both a type's parser and
        its caller finish the same section.
        """
        known = self._seen | set(known_elsewhere)
        for key in self.data:
            if key in known or key in self._reported_unknown:
                continue
            self._reported_unknown.add(key)
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {self.key_path(close[0])!r}?)" if close else ""
            self.error(key, f"unknown setting{hint}")
