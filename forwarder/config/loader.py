"""Reads forwarder.yml (or an existing filebeat.yml) into one nested mapping.

Steps, in order: permission check, YAML parse, dotted keys expanded into
nested mappings (`output.logstash.hosts: [...]` and the nested form mean the
same, as in Filebeat), `-E key=value` overrides, every `filebeat.` key read as
its `forwarder.` twin, then `${VAR}` expansion (keystore, then environment,
then other settings such as `${path.data}`; an expanded value stays text, and
only a setting's declared type converts it). Problems are collected and raised
together as a ConfigError naming file and key path. Every YAML text is parsed
with a bound on alias expansion, so a few hundred bytes cannot become gigabytes.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from forwarder.platform import current_platform
from forwarder.schema.section import ConfigError, Problem, is_secret_key

_VARIABLE = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")
_FLOW_LIST = re.compile(r"\s*\[.*\]\s*", re.DOTALL)
TWIN_PREFIX = "filebeat"
OWN_PREFIX = "forwarder"


def check_permissions(path: Path, strict: bool) -> list[Problem]:
    """Filebeat's rule: owned by root or the running user, not writable by group or others."""
    host = current_platform()
    if not strict or not host.checks_file_permissions(path):
        return []
    try:
        info = path.stat()
    except OSError as exc:
        return [Problem(str(path), "", f"cannot read: {exc.strerror}")]
    problems = []
    if not host.is_trusted_owner(info):
        problems.append(Problem(str(path), "", f"must be owned by the forwarder's user (uid={host.user_id()}) or root "
                                               "(or run with --strict.perms=false)"))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.filemode(info.st_mode)
        problems.append(Problem(str(path), "", f"can only be writable by the owner but the permissions are {mode!r} "
                                               f"(fix with chmod go-w {path}, or run with --strict.perms=false)"))
    return problems


class AliasExpansionError(yaml.YAMLError):
    """A document whose aliases would multiply into more nodes than any config needs (or loop forever)."""


# What aliases may add to a document once every `*alias` is written out in full. A config that shares a
# block of defaults between a few dozen inputs adds hundreds; a "billion laughs" document adds hundreds
# of millions, which our dict copies (dotted keys, -E merges, ${VAR} expansion) would then build.
MAX_ALIAS_EXPANSION = 100_000


def check_alias_expansion(root: yaml.Node) -> None:
    """Counts the nodes of `root` as if every alias were a copy, without building anything."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def expanded_size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise AliasExpansionError("an alias refers to a node that contains it (a recursive alias)")
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        size = 1 + sum(expanded_size(child) for child in children)
        open_nodes.discard(key)
        sizes[key] = size
        return size

    added = expanded_size(root) - len(sizes)
    if added > MAX_ALIAS_EXPANSION:
        raise AliasExpansionError(f"its aliases expand to {added:,} more nodes than are written (the limit is "
                                  f"{MAX_ALIAS_EXPANSION:,}); write the shared parts out or nest fewer aliases")


class _BoundedLoading:
    """Checks the composed document before any Python object is constructed from it."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_alias_expansion(node)
        return self.construct_document(node)


class BoundedSafeLoader(_BoundedLoading, yaml.SafeLoader):
    """yaml.safe_load's loader, with the alias bound."""


class BoundedTextLoader(_BoundedLoading, yaml.BaseLoader):
    """Structure only: every scalar stays the text it was written as."""


def load_yaml_text(text: str, textual: bool = False) -> Any:
    """Every YAML text the forwarder reads goes through here (files, `-E` values, `${VAR}` lists)."""
    return yaml.load(text, Loader=BoundedTextLoader if textual else BoundedSafeLoader)


def read_yaml(path: Path, strict_perms: bool) -> Any:
    """Parses one YAML file; raises ConfigError with the line of a syntax error."""
    problems = check_permissions(path, strict_perms)
    if problems:
        raise ConfigError(problems)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), "", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    try:
        return load_yaml_text(text)
    except AliasExpansionError as exc:
        raise ConfigError([Problem(str(path), "", f"refused: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), "", "refused: nested too deeply to be a config")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem(str(path), "", f"invalid YAML: {where}{reason}")]) from None


def expand_dotted(value: Any) -> Any:
    """`{"a.b": 1, "a": {"c": 2}}` → `{"a": {"b": 1, "c": 2}}`, recursively, lists included."""
    if isinstance(value, list):
        return [expand_dotted(item) for item in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        item = expand_dotted(item)
        parts = str(key).split(".") if isinstance(key, str) else [key]
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        merge_into(node, parts[-1], item)
    return result


def merge_into(node: dict[str, Any], key: Any, value: Any) -> None:
    existing = node.get(key)
    if isinstance(existing, dict) and isinstance(value, dict):
        for sub_key, sub_value in value.items():
            merge_into(existing, sub_key, sub_value)
    else:
        node[key] = value


def apply_override(config: dict[str, Any], assignment: str) -> Problem | None:
    """One `-E key=value`; the value is parsed as YAML, like Filebeat."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        return Problem("-E", assignment, "expected key=value")
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = raw
    deep_merge(config, expand_dotted({key.strip(): value}))
    return None


def deep_merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        merge_into(target, key, value)


def fold_twin_keys(config: dict[str, Any]) -> None:
    """Reads every `filebeat.` key as its `forwarder.` twin; the forwarder's own key wins."""
    twin = config.pop(TWIN_PREFIX, None)
    if isinstance(twin, dict):
        own = config.setdefault(OWN_PREFIX, {})
        if isinstance(own, dict):
            merged: dict[str, Any] = {}
            deep_merge(merged, twin)
            deep_merge(merged, own)
            config[OWN_PREFIX] = merged


Resolver = Callable[[str], "str | None"]


def expand_variables(value: Any, resolve: Resolver, source: str, path: str, problems: list[Problem]) -> Any:
    """Replaces `${NAME}` / `${NAME:default}` in every string; a missing NAME is a problem."""
    if isinstance(value, dict):
        return {k: expand_variables(v, resolve, source, f"{path}.{k}" if path else str(k), problems)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_variables(v, resolve, source, f"{path}.{i}" if path else str(i), problems)
                for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1).strip(), match.group(2)
        found = resolve(name)
        if found is not None:
            return found
        if default is not None:
            return default
        problems.append(Problem(source, path, f"${{{name}}} is not set in the keystore or the environment "
                                              f"(add it with `forwarder keystore add {name}` or export it)"))
        return ""

    expanded = _VARIABLE.sub(substitute, value)
    if expanded != value and _VARIABLE.fullmatch(value) and _FLOW_LIST.fullmatch(expanded):
        return _text_list(expanded)
    return expanded


def _text_list(text: str) -> Any:
    """`[a, 01234]` → `["a", "01234"]`: a whole-value reference may stand for a list (`hosts: ${HOSTS}`).

    Only the list structure is read; every item stays text, as every other `${NAME}` value does,
    and is converted only by the setting that declares a type (`port: ${PORT}` → Section.integer).
    """
    try:
        parsed = load_yaml_text(text, textual=True)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, list) else text


def lookup_setting(config: dict[str, Any], dotted: str) -> str | None:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, (dict, list)) or node is None else str(node)


def _is_private_key(value: str) -> bool:
    return "-----BEGIN" in value and "PRIVATE KEY-----" in value


def collect_secrets(config: Any, key: str = "") -> list[str]:
    """Values of settings whose names say they are secrets, so the log redactor can hide them.

    A PEM private key written inline (a certificate credential's `key`) is a secret whatever its setting
    is called: `key` alone names too many harmless settings to be a secret word."""
    found: list[str] = []
    if isinstance(config, dict):
        for sub_key, value in config.items():
            found.extend(collect_secrets(value, str(sub_key)))
    elif isinstance(config, list):
        for value in config:
            found.extend(collect_secrets(value, key))
    elif isinstance(config, str) and len(config) >= 4 and (is_secret_key(key) or _is_private_key(config)):
        found.append(config)
    return found
