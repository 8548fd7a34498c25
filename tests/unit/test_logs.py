"""Log lines are JSON, go where the config says, and never contain a configured secret."""

from __future__ import annotations

import json
import logging
import re

from forwarder.config.settings import LoggingSettings
from forwarder.logs import configure_logging


def test_secrets_are_redacted_from_messages_arguments_and_tracebacks(tmp_path):
    settings = LoggingSettings(files_path=tmp_path, files_name="forwarder", to_files=True)
    configure_logging(settings, ["hunter2-client-secret", "pw"])
    log = logging.getLogger("forwarder.test")
    log.error("token request failed for secret %s", "hunter2-client-secret")
    try:
        raise ValueError("AADSTS7000215: invalid secret hunter2-client-secret provided")
    except ValueError:
        log.exception("input failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (tmp_path / "forwarder").read_text()
    assert "hunter2" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == "token request failed for secret [REDACTED]"
    assert lines[0]["log.level"] == "ERROR" and lines[0]["log.logger"] == "forwarder.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[0]["@timestamp"])
    assert "AADSTS7000215" in lines[1]["exc_info"] and "[REDACTED]" in lines[1]["exc_info"]
    assert oct((tmp_path / "forwarder").stat().st_mode & 0o777) == "0o600"
    logging.getLogger().handlers.clear()
