"""Input, output, processor and module types, found through Python entry points.

Our own types are registered in setup.cfg exactly as a third-party package
registers its own (`[options.entry_points] forwarder.inputs = webhook =
acme.webhook:INPUT_TYPE`), so there is one way to add a source. A type is
imported only when a config names it: listing the names reads package
metadata only, which keeps start-up free of the cloud SDKs that the shipped
config never uses.

A plugin that fails to import, or a name that two packages claim, becomes a
`PluginError` with one line naming the package; only the configs that use that
name fail, every other type stays usable.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import threading
from dataclasses import dataclass
from typing import Any

from forwarder.schema.section import Problem

# Kind of plugin → its entry-point group.
GROUPS = {
    "input": "forwarder.inputs",
    "output": "forwarder.outputs",
    "processor": "forwarder.processors",
    "module": "forwarder.modules",
}


class PluginError(Exception):
    """A type that exists but cannot be used; the message is one line naming its package."""


@dataclass(frozen=True)
class PluginProblem(Problem):
    """A config problem that is a broken plugin: it stops the inputs that use the plugin, not the others."""


@dataclass(frozen=True)
class PluginEntry:
    """One registered name, known from package metadata before anything is imported."""

    kind: str
    name: str
    target: str
    """`module:attribute` the entry point loads."""
    package: str
    version: str

    @property
    def module_name(self) -> str:
        return self.target.split(":", 1)[0]


class PluginTable:
    """The types of one kind: names from metadata at first use, each type imported on first lookup."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.group = GROUPS[kind]
        self._entries: dict[str, list[PluginEntry]] | None = None
        self._loaded: dict[str, Any] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """How an error message names a type of this kind."""
        return "input type" if self.kind == "input" else self.kind

    def unknown(self, name: str) -> str:
        """The message for a name nothing registers, with the closest known one."""
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"unknown {self.label} {name!r} ({hint}known: {', '.join(self.names()) or 'none'}; "
                "`forwarder plugins list` shows where each comes from)")

    def names(self) -> list[str]:
        return sorted(self._by_name())

    def entries(self) -> list[PluginEntry]:
        """Every registration, claims on one name by two packages included (for `forwarder plugins list`)."""
        return [entry for name in self.names() for entry in self._by_name()[name]]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name()

    def get(self, name: str) -> Any:
        """The type registered as `name`; KeyError when none is, PluginError when it cannot be used."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name in self._failed:
                raise PluginError(self._failed[name])
            claims = self._by_name().get(name)
            if not claims:
                raise KeyError(name)
            try:
                loaded = self._load(name, claims)
            except PluginError as error:
                self._failed[name] = str(error)
                raise
            self._loaded[name] = loaded
            return loaded

    def problem(self, name: str) -> str | None:
        """Why `name` cannot be used (imports it to find out); None when it can or is not registered."""
        try:
            self.get(name)
        except KeyError:
            return None
        except PluginError as error:
            return str(error)
        return None

    def _load(self, name: str, claims: list[PluginEntry]) -> Any:
        if len(claims) > 1:
            packages = " and ".join(f"{c.package} {c.version} ({c.target})" for c in claims)
            raise PluginError(f"{self.kind} type {name!r} is registered by {packages}: uninstall one of them")
        entry = claims[0]
        try:
            module_name, _, attribute = entry.target.partition(":")
            loaded: Any = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                loaded = getattr(loaded, part)
        except Exception as error:  # any failure of third-party code at import is that package's problem
            raise PluginError(f"{self.kind} type {name!r} from package {entry.package} {entry.version} cannot be "
                              f"loaded ({entry.target}): {type(error).__name__}: {error}") from None
        return loaded

    def _by_name(self) -> dict[str, list[PluginEntry]]:
        if self._entries is None:
            self._entries = _read_entries(self.kind, self.group)
        return self._entries


def _read_entries(kind: str, group: str) -> dict[str, list[PluginEntry]]:
    found: dict[str, list[PluginEntry]] = {}
    seen: set[tuple[str, str, str]] = set()
    # (name, version) per distribution: reading them parses its whole METADATA file, which took 60 ms of every
    # start when done for each of our ~40 entry points.
    described: dict[int, tuple[str, str]] = {}
    for point in importlib.metadata.entry_points(group=group):
        dist = point.dist
        if dist is None:
            package, version = "unknown package", "?"
        else:
            if id(dist) not in described:
                metadata = dist.metadata
                described[id(dist)] = (metadata["Name"], metadata["Version"])
            package, version = described[id(dist)]
        if (point.name, point.value, package) in seen:  # one distribution found twice on sys.path
            continue
        seen.add((point.name, point.value, package))
        found.setdefault(point.name, []).append(PluginEntry(kind, point.name, point.value, package, version))
    return found


INPUTS = PluginTable("input")
OUTPUTS = PluginTable("output")
PROCESSORS = PluginTable("processor")
MODULES = PluginTable("module")
TABLES = (INPUTS, OUTPUTS, PROCESSORS, MODULES)
