"""The whole configuration, validated: `load_settings(options) -> Settings`.

Everything the user can get wrong is found here, before anything starts, and
reported as one line per problem naming the file and key path.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forwarder.config import loader
from forwarder.config.filebeat_keys import REFUSED_OUTPUTS, set_aside_top_level
from forwarder.config.inputs import (
    IncludedFiles,
    InputSpec,
    load_input_files,
    load_module_files,
    parse_input_list,
    parse_module_entry,
)
from forwarder.config.keystore import KEYSTORE_FILENAME, Keystore, KeystoreError
from forwarder.config.module_flags import apply_module_overrides, parse_module_flags, unused_override_warnings
from forwarder.config.queue_settings import parse_queue
from forwarder.config.shared_graph_pollers import merge_shared_graph_pollers
from forwarder.monitoring import reachable_from_other_hosts
from forwarder.outputs.base import OutputType
from forwarder.pipeline.client import Processor
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.plugins import OUTPUTS, PluginError, PluginProblem
from forwarder.schema.notices import collecting_ignored
from forwarder.schema.section import ConfigError, Problem, Section

log = logging.getLogger("forwarder.config")


@dataclass
class CliOptions:
    config_files: list[str] = field(default_factory=lambda: ["forwarder.yml"])
    overrides: list[str] = field(default_factory=list)
    path_home: str | None = None
    path_config: str | None = None
    path_data: str | None = None
    path_logs: str | None = None
    strict_perms: bool = True
    log_to_stderr: bool = False
    modules: list[str] = field(default_factory=list)
    module_overrides: list[str] = field(default_factory=list)


@dataclass
class Paths:
    home: Path
    config: Path
    data: Path
    logs: Path


@dataclass
class LoggingSettings:
    level: str = "info"
    to_stderr: bool = False
    to_files: bool = True
    files_path: Path = Path("logs")
    files_name: str = "forwarder"
    keepfiles: int = 7
    permissions: int = 0o600
    rotate_every_bytes: int = 10 * 1024 * 1024
    metrics_enabled: bool = True
    metrics_period: float = 30.0


@dataclass
class Settings:
    config_file: Path
    paths: Paths
    name: str
    inputs: list[InputSpec]
    processors: list[Processor]
    queue_events: int
    queue_bytes: int
    flush_min_events: int
    flush_timeout: float
    output_type: OutputType
    output_config: Any
    logging: LoggingSettings
    http_enabled: bool
    http_host: str
    http_port: int
    registry_path: Path
    registry_flush: float
    registry_permissions: int
    shutdown_timeout: float
    modules_glob: str
    keystore_path: Path
    secrets: list[str]
    warnings: list[str]
    # Inputs not started because a plugin they use cannot be loaded (one line each, naming the package).
    plugin_errors: list[str] = field(default_factory=list)
    # Set when `queue.disk` is configured: events wait on disk instead of in memory.
    disk_queue: DiskQueueSettings | None = None
    # `forwarder.workers`: "auto" (one worker process per usable core) or a count; 1 runs everything in one process.
    workers: str | int = "auto"


def resolve_paths(options: CliOptions, config: dict[str, Any]) -> Paths:
    """CLI flags win over `path.*` settings; data and logs default under home, as in Filebeat."""
    section = config.get("path") if isinstance(config.get("path"), dict) else {}
    home = Path(options.path_home or section.get("home") or os.getcwd()).resolve()
    conf = Path(options.path_config or section.get("config") or home)
    data = Path(options.path_data or section.get("data") or home / "data")
    logs = Path(options.path_logs or section.get("logs") or home / "logs")
    return Paths(home, conf if conf.is_absolute() else home / conf,
                 data if data.is_absolute() else home / data, logs if logs.is_absolute() else home / logs)


def config_file_path(options: CliOptions) -> Path:
    """`-c FILE` relative to --path.config (or home, or the working directory)."""
    name = Path(options.config_files[-1] if options.config_files else "forwarder.yml")
    if name.is_absolute():
        return name
    base = options.path_config or options.path_home
    return Path(base) / name if base else Path.cwd() / name


def keystore_location(config: dict[str, Any], paths: Paths) -> Path:
    section = config.get("keystore")
    configured = section.get("path") if isinstance(section, dict) else None
    return Path(configured) if configured else paths.data / KEYSTORE_FILENAME


def load_raw_config(options: CliOptions) -> tuple[Path, dict[str, Any], Paths, list[str], loader.Resolver]:
    """Parsed, merged, overridden and expanded config mapping, before validation."""
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    config_file = config_file_path(options)
    for name in options.config_files or ["forwarder.yml"]:
        path = Path(name) if Path(name).is_absolute() else config_file.parent / Path(name).name
        data = loader.read_yaml(path, options.strict_perms)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError([Problem(str(path), "", "expected a mapping of settings at the top level")])
        loader.deep_merge(merged, loader.expand_dotted(data))
    for assignment in options.overrides:
        problem = loader.apply_override(merged, assignment)
        if problem:
            problems.append(problem)
    loader.fold_twin_keys(merged)
    paths = resolve_paths(options, merged)
    keystore_path = keystore_location(merged, paths)
    try:
        secrets = Keystore(keystore_path, options.strict_perms).load()
    except KeystoreError as exc:  # its message names the keystore's path already
        raise ConfigError([Problem("keystore", "", str(exc))]) from None
    path_values = {"path.home": str(paths.home), "path.config": str(paths.config),
                   "path.data": str(paths.data), "path.logs": str(paths.logs)}

    def resolve(name: str) -> str | None:
        if name in secrets:
            return secrets[name]
        if name in os.environ:
            return os.environ[name]
        return path_values.get(name) or loader.lookup_setting(merged, name)

    expanded = loader.expand_variables(merged, resolve, str(config_file), "", problems)
    if problems:
        raise ConfigError(problems)
    return config_file, expanded, paths, list(secrets.values()), resolve


def load_settings(options: CliOptions) -> Settings:
    """The validated settings; Filebeat keys accepted without effect come first in `warnings`, one line each."""
    with collecting_ignored() as ignored_lines:
        settings = _read_settings(options)
    settings.warnings[:0] = ignored_lines
    return settings


def _read_settings(options: CliOptions) -> Settings:
    config_file, config, paths, keystore_secrets, resolve = load_raw_config(options)
    problems: list[Problem] = []
    module_flags = parse_module_flags(options.modules, options.module_overrides, problems)
    included = IncludedFiles(options.strict_perms, resolve, problems, [], module_flags)
    warnings: list[str] = []
    source = str(config_file)
    set_aside_top_level(config, source, problems)
    root = Section(config, "", source, problems)

    own = root.section("forwarder")
    inputs = parse_input_list(own.sections("inputs"))
    for entry in own.sections("modules"):
        apply_module_overrides(entry.data, module_flags)
        inputs += parse_module_entry(entry)
    external_config = own.section("config")
    modules_section = external_config.section("modules")
    modules_enabled = modules_section.boolean("enabled", True)
    modules_glob = modules_section.string("path", str(paths.config / "modules.d" / "*.yml"))
    modules_section.finish()
    input_files = external_config.section("inputs")
    inputs_enabled = input_files.boolean("enabled", True)
    external_inputs = input_files.string("path", None)
    input_files.finish()
    external_config.finish()
    shutdown_timeout = own.duration("shutdown_timeout", 5.0)
    workers = _parse_workers(own)
    registry = own.section("registry")
    registry_path = Path(registry.string("path", "registry"))
    registry_flush = registry.duration("flush", 1.0)
    registry_permissions = _octal(registry, "file_permissions", 0o600)
    registry.finish()
    own.finish()

    if external_inputs and inputs_enabled:
        pattern = _absolute(external_inputs, paths.config)
        inputs += load_input_files(pattern, included, len(inputs))
    if modules_enabled or module_flags.names:
        inputs += load_module_files(_absolute(modules_glob, paths.config), included, modules_enabled)
    warnings += unused_override_warnings(module_flags)
    inputs, poller_lines = merge_shared_graph_pollers(inputs)
    warnings += poller_lines
    # A broken plugin stops only the inputs that use it; anywhere else (output, global processors) it is fatal.
    plugin_errors = [str(problem) for problem in problems if isinstance(problem, PluginProblem)]
    problems[:] = [problem for problem in problems if not isinstance(problem, PluginProblem)]

    global_tags = root.string_list("tags", [])
    global_fields = root.mapping("fields", {})
    fields_under_root = root.boolean("fields_under_root", False)
    processors = build_processors(root.sections("processors"))
    if global_fields:
        processors.insert(0, _global_fields_processor(global_fields, fields_under_root))
    for spec in inputs:
        spec.client.tags = spec.client.tags + [t for t in global_tags if t not in spec.client.tags]

    memory_queue, disk_queue = parse_queue(root.section("queue"), paths.data)

    output_type, output_config = _parse_output(root.section("output"))
    logging_settings = _parse_logging(root.section("logging"), paths, options.log_to_stderr)
    http = root.section("http")
    http_enabled = http.boolean("enabled", False)
    http_host = http.string("host", "localhost")
    http_port = http.integer("port", 5066, minimum=0, maximum=65535)
    http.finish()
    if http_enabled and reachable_from_other_hosts(http_host):
        warnings.append(f"{source}: http.host: {http_host!r} serves the unauthenticated /stats endpoint to other "
                        "machines; use localhost, or make sure a firewall limits who can reach port "
                        f"{http_port}")

    name = root.string("name", socket.gethostname())
    root.section("path")
    keystore = root.section("keystore")
    keystore.string("path", None)
    keystore.finish()
    root.finish()
    if inputs == [] and not problems and not plugin_errors:
        warnings.append(f"{source}: no inputs are enabled (forwarder.inputs is empty and no module is enabled)")
    if problems:
        raise ConfigError(problems)
    return Settings(
        config_file=config_file, paths=paths, name=name, inputs=inputs, processors=processors,
        queue_events=memory_queue.events, queue_bytes=memory_queue.bytes,
        flush_min_events=memory_queue.flush_min_events, flush_timeout=memory_queue.flush_timeout,
        disk_queue=disk_queue, output_type=output_type, output_config=output_config,
        logging=logging_settings, http_enabled=http_enabled, http_host=http_host, http_port=http_port,
        registry_path=_absolute_path(registry_path, paths.data), registry_flush=registry_flush,
        registry_permissions=registry_permissions, shutdown_timeout=shutdown_timeout,
        modules_glob=_absolute(modules_glob, paths.config), workers=workers,
        keystore_path=keystore_location(config, paths),
        secrets=keystore_secrets + loader.collect_secrets(config) + included.secrets, warnings=warnings,
        plugin_errors=plugin_errors,
    )


def _parse_workers(section: Section) -> str | int:
    """`forwarder.workers`; without it, the environment's FORWARDER_WORKERS (containers, a test run), else auto."""
    value = section.raw("workers", os.environ.get("FORWARDER_WORKERS", "auto"))
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 256):
        return value
    origin = "" if section.has("workers") else " (from the environment variable FORWARDER_WORKERS)"
    section.error("workers", f"must be auto or a number of worker processes from 1 to 256{origin} (got {value!r}); "
                             "1 runs inputs, processors and outputs in one process")
    return "auto"


def _parse_output(section: Section) -> tuple[OutputType | None, Any]:
    """The one enabled output and its parsed config; (None, None) with the problem recorded otherwise."""
    enabled = []
    for name in section.data:
        sub = section.data[name]
        if isinstance(sub, dict) and sub.get("enabled", True) in (False, "false"):
            section.ignore(name)
            continue
        enabled.append(name)
    known = ", ".join(OUTPUTS.names())
    refused = [name for name in enabled if name in REFUSED_OUTPUTS]
    for name in refused:
        section.error(name, f"unsupported output: events would not be delivered there; configure one of "
                            f"output.{{{known}}} instead")
    if refused:
        section.ignore(*section.data)
        return None, None
    if len(enabled) != 1:
        if not enabled:
            section.error("", f"no output is enabled: configure exactly one of output.{{{known}}}")
        else:
            section.error("", f"exactly one output may be enabled, found {', '.join(enabled)}")
        section.ignore(*section.data)
        return None, None
    name = enabled[0]
    try:
        output_type = OUTPUTS.get(name)
    except KeyError:
        section.error(name, f"unsupported output (supported: {known})")
        section.ignore(name)
        return None, None
    except PluginError as error:
        section.error(name, str(error))
        section.ignore(name)
        return None, None
    sub = section.section(name)
    sub.ignore("enabled")
    config = output_type.parse_config(sub)
    sub.finish()
    return output_type, config


def _parse_logging(section: Section, paths: Paths, to_stderr: bool) -> LoggingSettings:
    level = section.string("level", "info", choices=("debug", "info", "warning", "error", "critical"))
    files = section.section("files")
    metrics = section.section("metrics")
    result = LoggingSettings(
        level=level,
        to_stderr=to_stderr or section.boolean("to_stderr", False),
        to_files=section.boolean("to_files", True) and not to_stderr,
        files_path=Path(files.string("path", str(paths.logs))),
        files_name=files.string("name", "forwarder"),
        keepfiles=files.integer("keepfiles", 7, minimum=1, maximum=1024),
        permissions=_octal(files, "permissions", 0o600),
        rotate_every_bytes=files.size("rotateeverybytes", 10 * 1024 * 1024),
        metrics_enabled=metrics.boolean("enabled", True),
        metrics_period=metrics.duration("period", 30.0),
    )
    files.finish()
    metrics.finish()
    section.finish()
    return result


def _octal(section: Section, key: str, default: int) -> int:
    value = section.raw(key, None)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # YAML already read 0600 as an octal number
    try:
        return int(str(value), 8)
    except ValueError:
        section.error(key, f"expected an octal file mode such as 0600 (got {value!r})")
        return default


def _absolute(pattern: str, base: Path) -> str:
    return pattern if os.path.isabs(pattern) else str(base / pattern)


def _absolute_path(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path


def _global_fields_processor(fields: dict[str, Any], under_root: bool) -> Processor:
    """Top-level `fields` apply to every event, like Filebeat's global fields."""

    def add_global_fields(event: Event) -> Event:
        target = event.fields if under_root else event.fields.setdefault("fields", {})
        loader.deep_merge(target, loader.expand_dotted(fields))
        return event

    return add_global_fields
