"""The syslog listeners get a ListenerContext, never the input: none of their modules imports the input's."""

from __future__ import annotations

import ast
from pathlib import Path

import forwarder.inputs

INPUTS = Path(forwarder.inputs.__file__).parent
LISTENER_MODULES = ("syslog_listeners", "syslog_tcp", "syslog_tls", "syslog_buffer_budget",
                    "syslog_framing", "syslog_parser", "syslog_config", "syslog_events")


def imported_modules(name: str) -> set[str]:
    tree = ast.parse((INPUTS / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_listener_module_imports_the_syslog_input():
    for name in LISTENER_MODULES:
        assert "forwarder.inputs.syslog" not in imported_modules(name), name

