"""`forwarder export config`: the configuration as the forwarder reads it, secrets masked.

What is printed is the main config after everything the loader does before
validation (files merged, `-E` applied, `filebeat.` keys read as their
`forwarder.` twins, `${VAR}` expanded), so a site can see what a flag, an
environment variable or a keystore entry turned into. A secret never reaches
the terminal: a setting named like a secret shows `[REDACTED]`, and any
keystore value or secret found elsewhere is masked wherever it appears in
another value (a URL that embeds a password).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from forwarder.config.loader import collect_secrets
from forwarder.config.settings import CliOptions, load_raw_config
from forwarder.redaction import REDACTED, SecretValues
from forwarder.schema.section import is_secret_key


def effective_config_text(options: CliOptions) -> str:
    """The YAML text of the effective main config; raises ConfigError like loading does."""
    _, config, _, keystore_secrets, _ = load_raw_config(options)
    secrets = SecretValues(keystore_secrets + collect_secrets(config))
    masked = secrets.redact_value(_mask_secret_settings(config))
    return yaml.safe_dump(masked, sort_keys=False, default_flow_style=False, allow_unicode=True)


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*:)[^/@\s]*@")


def _mask_secret_settings(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask_secret_settings(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secret_settings(item, key) for item in value]
    if value not in (None, "") and is_secret_key(key):
        return REDACTED
    if isinstance(value, str) and "@" in value:
        # `scheme://user:password@host` (a proxy_url, a host): the password goes, the rest stays readable.
        return _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return value
