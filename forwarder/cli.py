"""The `forwarder` command, with Filebeat's habits: `forwarder -e -c forwarder.yml`, `test config`, …

Global flags work before or after the sub-command. Errors the user can fix
are printed as one line each on stderr with exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import threading
from pathlib import Path

from forwarder import __version__
from forwarder.config import loader
from forwarder.config.keystore import Keystore, KeystoreError
from forwarder.config.settings import CliOptions, config_file_path, keystore_location, load_settings, resolve_paths
from forwarder.export.arguments import add_export_parser
from forwarder.filebeat_registry.command import add_import_parser
from forwarder.log_files import LogFileError
from forwarder.module_files import list_modules, switch_modules
from forwarder.platform import current_platform, unregister_stop_event
from forwarder.plugin_listing import list_plugins, registration_warnings
from forwarder.registry import RegistryError
from forwarder.schema.section import ConfigError
from forwarder.service_command import add_service_parser, run_service_command

log = logging.getLogger("forwarder")
# The inputs `--once` can run: those whose source has an end to read to.
ONCE_INPUT_TYPES = ("filestream", "log")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", dest="config_files", action="append", metavar="FILE",
                        help="config file (default forwarder.yml under --path.config)", default=argparse.SUPPRESS)
    common.add_argument("-e", dest="log_to_stderr", action="store_true", default=argparse.SUPPRESS,
                        help="log to stderr instead of files")
    common.add_argument("-E", dest="overrides", action="append", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help="override a setting; the value is parsed as YAML")
    common.add_argument("-d", dest="debug_selectors", metavar="SELECTORS", default=argparse.SUPPRESS,
                        help="enable debug logging (selectors are accepted for compatibility)")
    for name in ("home", "config", "data", "logs"):
        common.add_argument(f"--path.{name}", dest=f"path_{name}", metavar="DIR", default=argparse.SUPPRESS)
    common.add_argument("--strict.perms", dest="strict_perms", metavar="true|false", default=argparse.SUPPRESS,
                        type=_boolean, help="refuse config files writable by group/others (default true)")
    common.add_argument("--modules", dest="modules", action="append", metavar="NAME,...", default=argparse.SUPPRESS,
                        help="also run these modules' files from modules.d for this run, enabled or not")
    common.add_argument("--once", dest="once", action="store_true", default=argparse.SUPPRESS,
                        help="read every file input to the end, wait until all is acknowledged, then exit 0")
    common.add_argument("-M", dest="module_overrides", action="append", metavar="MODULE.KEY=VALUE",
                        default=argparse.SUPPRESS, help="override a module setting, e.g. o365.audit.var.KEY=VALUE")

    parser = argparse.ArgumentParser(prog="forwarder", parents=[common],
                                     description="Security log forwarder, a drop-in for Filebeat.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="run the forwarder (the default)")
    commands.add_parser("version", parents=[common], help="print the version")
    test = commands.add_parser("test", parents=[common], help="check the config or the output")
    test.add_argument("what", choices=["config", "output"])
    modules = commands.add_parser("modules", parents=[common], help="list, enable or disable modules")
    modules.add_argument("action", choices=["list", "enable", "disable"])
    modules.add_argument("names", nargs="*", metavar="NAME")
    plugins = commands.add_parser("plugins", parents=[common], help="list input, output, processor and module types")
    plugins.add_argument("action", choices=["list"])
    keystore = commands.add_parser("keystore", parents=[common], help="manage secrets referenced as ${KEY}")
    keystore.add_argument("action", choices=["create", "add", "list", "remove"])
    keystore.add_argument("key", nargs="?", metavar="KEY")
    keystore.add_argument("--stdin", action="store_true", help="read the value from standard input")
    keystore.add_argument("--force", action="store_true", help="overwrite an existing keystore or key")
    add_export_parser(commands, common)
    add_import_parser(commands, common)
    add_service_parser(commands, common)
    return parser


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false")


def options_from(args: argparse.Namespace) -> CliOptions:
    return CliOptions(
        config_files=getattr(args, "config_files", None) or ["forwarder.yml"],
        overrides=getattr(args, "overrides", []),
        path_home=getattr(args, "path_home", None),
        path_config=getattr(args, "path_config", None),
        path_data=getattr(args, "path_data", None),
        path_logs=getattr(args, "path_logs", None),
        strict_perms=getattr(args, "strict_perms", True),
        log_to_stderr=getattr(args, "log_to_stderr", False),
        modules=getattr(args, "modules", []),
        module_overrides=getattr(args, "module_overrides", []),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    exporting_config = _asks_for_config_export(argv)
    if exporting_config:
        argv = [token for index, token in enumerate(argv) if index not in exporting_config]
    args = build_parser().parse_args(argv)
    options = options_from(args)
    command = "export config" if exporting_config else args.command or "run"
    try:
        if command == "export config":
            from forwarder.config.effective import effective_config_text
            print(effective_config_text(options), end="")
            return 0
        if command == "version":
            print(f"forwarder version {__version__}")
            return 0
        if command == "test":
            return test_config(options) if args.what == "config" else test_output(options)
        if command == "modules":
            return manage_modules(options, args.action, args.names)
        if command == "plugins":
            return list_plugins()
        if command == "keystore":
            return manage_keystore(options, args.action, args.key, args.stdin, args.force)
        if command == "import-registry":
            from forwarder.filebeat_registry.command import run_import
            return run_import(options, args)
        if command == "service":
            return run_service_command(args.action, options, main)
        if command == "export":
            from forwarder.export.command import run_export
            return run_export(options, args)
        return run(options, debug=hasattr(args, "debug_selectors"), once=hasattr(args, "once"))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 1
    except (KeystoreError, RegistryError, LogFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _asks_for_config_export(argv: list[str]) -> tuple[int, int] | None:
    """The positions of `export config` (Filebeat's spelling), which the time-range `export` parser cannot take."""
    for index, token in enumerate(argv[:-1]):
        if token == "export" and argv[index + 1] == "config" and (index == 0 or argv[index - 1] != "-c"):
            return index, index + 1
    return None


def run(options: CliOptions, debug: bool = False, once: bool = False) -> int:
    from forwarder.logs import configure_logging
    from forwarder.runner import Forwarder, StartupError

    settings = load_settings(options)
    not_files = [spec.client for spec in settings.inputs if spec.client.input_type not in ONCE_INPUT_TYPES]
    if once and not_files:
        names = ", ".join(f"{client.input_id} ({client.input_type})" for client in not_files)
        print(f"error: --once reads file inputs to their end ({', '.join(ONCE_INPUT_TYPES)}); these inputs have "
              f"no end: {names}; disable them for this run", file=sys.stderr)
        return 1
    if debug:
        settings.logging.level = "debug"
    configure_logging(settings.logging, settings.secrets)
    for warning in settings.warnings:
        log.warning(warning)
    for problem in settings.plugin_errors:
        log.error("input not started: %s", problem)
    if settings.plugin_errors and not settings.inputs:
        print("error: no input can start (see the lines above)", file=sys.stderr)
        return 1
    stop = threading.Event()
    # SIGTERM/SIGINT, Ctrl-C/Ctrl-Break, or the Windows service stop request.
    current_platform().install_stop_handlers(stop)
    try:
        return Forwarder(settings, stop, once).run()
    except (StartupError, RegistryError) as exc:
        # A disk or data-path problem, at start or while saving the registry at stop: one line, exit 1.
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        unregister_stop_event(stop)


def test_config(options: CliOptions) -> int:
    settings = load_settings(options)
    for warning in settings.warnings + registration_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    for problem in settings.plugin_errors:
        print(f"config error: {problem}", file=sys.stderr)
    if settings.plugin_errors:
        return 1
    print("Config OK")
    return 0


def test_output(options: CliOptions) -> int:
    settings = load_settings(options)
    results = settings.output_type.check(settings.output_config)
    for result in results:
        print(f"{settings.output_type.name} {result.target}... {'OK' if result.ok else 'ERROR'}: {result.detail}")
    return 0 if results and all(r.ok for r in results) else 1


def raw_setting(options: CliOptions, dotted: str, default: str) -> tuple[str, dict]:
    """A setting read without validating the whole config (for `modules` and `keystore`)."""
    path = config_file_path(options)
    config: dict = {}
    if path.exists():
        data = loader.read_yaml(path, options.strict_perms)
        config = loader.expand_dotted(data) if isinstance(data, dict) else {}
    for assignment in options.overrides:
        loader.apply_override(config, assignment)
    loader.fold_twin_keys(config)
    paths = resolve_paths(options, config)
    values = {"path.home": str(paths.home), "path.config": str(paths.config),
              "path.data": str(paths.data), "path.logs": str(paths.logs)}
    value = loader.lookup_setting(config, dotted) or default
    resolved = loader.expand_variables(value, lambda n: values.get(n) or os.environ.get(n), str(path), dotted, [])
    return str(resolved), {"paths": paths, "config": config}


def manage_modules(options: CliOptions, action: str, names: list[str]) -> int:
    pattern, _ = raw_setting(options, "forwarder.config.modules.path", "${path.config}/modules.d/*.yml")
    directory = Path(pattern).parent
    if action == "list":
        return list_modules(directory)
    return switch_modules(directory, action, names)


def manage_keystore(options: CliOptions, action: str, key: str | None, from_stdin: bool, force: bool) -> int:
    _, context = raw_setting(options, "keystore.path", "")
    keystore = Keystore(keystore_location(context["config"], context["paths"]), options.strict_perms)
    if action == "create":
        keystore.create(force)
        print(f"Created keystore {keystore.path}")
        return 0
    if action == "list":
        for name in keystore.names():
            print(name)
        return 0
    if not key:
        print(f"error: keystore {action} needs a KEY", file=sys.stderr)
        return 1
    if action == "remove":
        keystore.remove(key)
        print(f"Removed {key}")
        return 0
    if not keystore.exists():
        keystore.create()
    value = sys.stdin.read().rstrip("\r\n") if from_stdin else getpass.getpass(f"Enter value for {key}: ")
    if not value:
        print("error: empty value; nothing stored", file=sys.stderr)
        return 1
    keystore.add(key, value, force)
    print(f"Added {key} to {keystore.path}")
    return 0


def entry_point() -> None:
    sys.exit(main())
