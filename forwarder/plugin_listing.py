"""`forwarder plugins list`: every input, output, processor and module type, and where it comes from.

Unlike a run, the listing imports every type: it is the place to find out that
a plugin is broken before a config uses it. Each problem is one line naming
the package; the exit status is 1 when there is one.
"""

from __future__ import annotations

from forwarder.plugins import TABLES


def list_plugins() -> int:
    status = 0
    for table in TABLES:
        entries = table.entries()
        print(f"{table.kind}s:")
        width = max((len(entry.name) for entry in entries), default=0)
        for entry in entries:
            problem = table.problem(entry.name)
            line = f"  {entry.name:<{width}}  {entry.package} {entry.version}  ({entry.target})"
            if problem:
                status = 1
                line += f"  ERROR: {problem}"
            print(line)
        print()
    return status


def registration_warnings() -> list[str]:
    """Names claimed by two packages, found from metadata alone (cheap enough for every `test config`)."""
    warnings = []
    for table in TABLES:
        claims: dict[str, list[str]] = {}
        for entry in table.entries():
            claims.setdefault(entry.name, []).append(f"{entry.package} {entry.version}")
        warnings += [f"{table.label} {name!r} is registered by {' and '.join(packages)}: a config that uses it "
                     "fails until one of them is uninstalled" for name, packages in claims.items() if len(packages) > 1]
    return warnings
