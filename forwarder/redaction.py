"""The secret values this process must never print, and the one function that hides them.

Secrets (keystore entries, settings named like password/secret/token) are
known once the config is loaded; `configure_logging` registers them here. The
log handlers redact every record with them, and the stats table redacts every
error text and every string it hands to `/stats` or the `metrics` log line, so
a credential quoted by an identity endpoint or a library exception is hidden
wherever it travels. Like the root logger, the set is process-wide.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"


class SecretValues:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.replace(secrets)

    def replace(self, secrets: Iterable[str]) -> None:
        """Longest first, so a secret that contains another is replaced whole."""
        ordered = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        with self._lock:
            self._secrets = ordered

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact_value(self, value: Any) -> Any:
        """A copy of `value` with every string inside it (keys included) redacted; other values unchanged."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(item) for item in value]
        return value


KNOWN_SECRETS = SecretValues()
