"""`forwarder import-registry PATH [--dry-run]`: Filebeat's positions into our registry, or a preview of it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from forwarder.config.settings import CliOptions, load_settings


def add_import_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "import-registry", parents=[common],
        help="carry Filebeat's registry positions over, so switching re-ships nothing")
    parser.add_argument("registry_path", metavar="PATH",
                        help="Filebeat's data/registry/filebeat directory (or its data directory)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be imported; write nothing")


def run_import(options: CliOptions, args: argparse.Namespace) -> int:
    # Imported here: `forwarder` without this sub-command does not load the file-input modules.
    from forwarder.data_lock import DataDirectoryLock, StartupError
    from forwarder.filebeat_registry.memlog import MemlogError
    from forwarder.filebeat_registry.plan import marker, plan_import
    from forwarder.registry import Registry

    settings = load_settings(options)
    try:
        plan = plan_import(Path(args.registry_path).absolute(), settings.inputs)
    except MemlogError as exc:
        print(f"error: nothing imported: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("\n".join(plan.report_lines(dry_run=True)))
        return 0
    lock = DataDirectoryLock(settings.paths.data)
    try:
        lock.acquire()
    except StartupError as exc:
        print(f"error: nothing imported: {exc}", file=sys.stderr)
        return 1
    try:
        registry = Registry(settings.registry_path / "forwarder", 0, settings.registry_permissions)
        if len(registry):
            registry.close()
            print(f"error: nothing imported: the forwarder's registry {registry.directory} already holds "
                  f"{len(registry)} entries; import-registry only fills an empty one (move that directory "
                  "aside to import again, and the forwarder reads everything from Filebeat's positions)",
                  file=sys.stderr)
            return 1
        registry.commit({**plan.entries, **marker(plan, time.time())})
        registry.close()
    finally:
        lock.release()
    print("\n".join(plan.report_lines(dry_run=False)))
    return 0
