"""JSON log lines to `${path.logs}` (rotated) or to stderr with `-e`, with secrets redacted.

Every configured secret value (keystore entries and settings named like
password/secret/token) is replaced by `[REDACTED]` in every record before it
is formatted, so a library that echoes a credential in an exception message
cannot leak it into the log. That covers the message, the traceback and the
fields passed in `extra` (the `metrics` line carries all counters there).
"""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter

from forwarder.config.settings import LoggingSettings
from forwarder.log_files import rotating_log_file
from forwarder.redaction import KNOWN_SECRETS, SecretValues

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class SecretRedactor(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = SecretValues(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self._secrets.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._secrets.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, self._secrets.redact_value(value))
        return True


def configure_logging(settings: LoggingSettings, secrets: list[str], name: str = "forwarder") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                              rename_fields={"asctime": "@timestamp", "levelname": "log.level", "name": "log.logger"})
    # ISO 8601 in UTC with milliseconds, like the events themselves.
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handlers: list[logging.Handler] = []
    if settings.to_stderr or not settings.to_files:
        handlers.append(logging.StreamHandler(sys.stderr))
    if settings.to_files:
        handlers.append(rotating_log_file(settings))
    KNOWN_SECRETS.replace(secrets)
    redactor = SecretRedactor(secrets)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(settings.level.upper())


def configure_console_logging(level: str = "info") -> None:
    """Before the config is read (and for one-shot commands): plain JSON on stderr."""
    configure_logging(LoggingSettings(level=level, to_stderr=True, to_files=False), [])
