"""`forwarder modules list|enable|disable`: the module files of modules.d, as Filebeat manages them.

A module is enabled by its file's name: `NAME.yml` is read, `NAME.yml.disabled`
is not. A module that comes from a plugin package may ship its template inside
the package (`<package>/modules.d/NAME.yml.disabled`, read with
importlib.resources); `enable` copies it into modules.d the first time, so a
site edits its own copy, and `list` shows such modules as available.
"""

from __future__ import annotations

import glob
import importlib.resources
import os
import sys
from pathlib import Path

from forwarder.plugins import MODULES

TEMPLATE_DIRECTORY = "modules.d"


def plugin_template(name: str) -> bytes | None:
    """The template a plugin package ships for module `name`; None when none does (or the package is broken)."""
    for entry in MODULES.entries():
        if entry.name != name:
            continue
        package = entry.module_name.split(".", 1)[0]
        try:
            resource = importlib.resources.files(package) / TEMPLATE_DIRECTORY / f"{name}.yml.disabled"
            if resource.is_file():
                return resource.read_bytes()
        except (ImportError, OSError):
            continue
    return None


def list_modules(directory: Path) -> int:
    enabled = sorted(Path(p).name[:-len(".yml")] for p in glob.glob(str(directory / "*.yml")))
    disabled = sorted(Path(p).name[:-len(".yml.disabled")] for p in glob.glob(str(directory / "*.yml.disabled")))
    on_disk = set(enabled) | set(disabled)
    available = [name for name in MODULES.names() if name not in on_disk and plugin_template(name) is not None]
    print("Enabled:\n" + "".join(f"{name}\n" for name in enabled))
    print("Disabled:\n" + "".join(f"{name}\n" for name in disabled), end="")
    if available:
        print("\nAvailable from plugin packages (`forwarder modules enable NAME` copies the template):\n"
              + "".join(f"{name}\n" for name in available), end="")
    return 0


def switch_modules(directory: Path, action: str, names: list[str]) -> int:
    """`enable` or `disable` each module by renaming its file (or copying a plugin's template into place)."""
    if not names:
        print(f"error: modules {action} needs at least one module name", file=sys.stderr)
        return 1
    status = 0
    for name in names:
        enabled, disabled = directory / f"{name}.yml", directory / f"{name}.yml.disabled"
        source, target = (disabled, enabled) if action == "enable" else (enabled, disabled)
        if target.exists() and not source.exists():
            print(f"Module {name} is already {action}d")
        elif source.exists():
            source.rename(target)
            print(f"{action.capitalize()}d {name}")
        elif action == "enable" and (template := plugin_template(name)) is not None:
            _write_owner_only(target, template)
            print(f"Enabled {name} (from its plugin's template; edit {target})")
        else:
            print(f"Module {name} doesn't exist in {directory}!", file=sys.stderr)
            status = 1
    return status


def _write_owner_only(path: Path, content: bytes) -> None:
    """Module files hold credentials: created 0600, which is also what strict permission checks accept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
