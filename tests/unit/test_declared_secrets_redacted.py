"""Every setting declared `secret=True` is one the log redactor hides.

The redactor picks secrets by key name (`collect_secrets`, `SECRET_KEY_WORDS`),
not from the declarations, so a secret declared under a name it does not
recognise would be kept out of error messages yet printed by any log line
that happens to contain it. Each documented type's secrets are written, at
their nested path and in the module's `var.` spelling, into a config the real
`collect_secrets` reads.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from forwarder.config.loader import collect_secrets, expand_dotted
from forwarder.schema.declared import Setting

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "readme_settings.py"


def declared_secrets() -> list[tuple[str, Setting]]:
    """(table, setting) of every secret in the types whose settings the README documents."""
    spec = importlib.util.spec_from_file_location("readme_settings", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return [(name, setting) for name, source in script.TABLES.items()
            for setting in script.declared_settings(source) if setting.secret]


def test_the_microsoft_inputs_declare_their_credentials_secret() -> None:
    secrets = {(name, setting.name) for name, setting in declared_secrets()}
    assert {("graph", "client_secret"), ("o365audit", "client_secret"), ("azure-eventhub", "connection_string"),
            ("azure-eventhub", "storage_account_key"),
            ("azure-eventhub", "storage_account_connection_string")} <= secrets


@pytest.mark.parametrize(("table", "setting"), declared_secrets(), ids=lambda value: getattr(value, "name", value))
def test_a_declared_secret_is_collected_for_redaction(table: str, setting: Setting) -> None:
    value = f"value-of-{table}-{setting.name}"
    as_input: dict[str, Any] = expand_dotted({"type": table, setting.name: value})
    as_module_var = {"module": "any", "var": expand_dotted({setting.name: value})}
    assert collect_secrets({"inputs": [as_input]}) == [value]
    assert collect_secrets([as_module_var]) == [value]


def test_an_inline_pem_private_key_is_a_secret_whatever_its_setting_is_called() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    encrypted = pem.replace("PRIVATE", "ENCRYPTED PRIVATE")
    certificate = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    config = expand_dotted({"var.key": pem, "var": {"ssl.key": encrypted}, "certificate": certificate,
                            "key_path": "/etc/forwarder/app.key"})
    assert sorted(collect_secrets(config)) == sorted([pem, encrypted])
