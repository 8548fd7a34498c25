"""The `logstash` output: Lumberjack v2 (the beats protocol) to Logstash beats listeners."""

from __future__ import annotations

from forwarder.outputs.base import OutputType
from forwarder.outputs.logstash.check import check
from forwarder.outputs.logstash.config import LogstashConfig, parse_config
from forwarder.outputs.logstash.output import LogstashOutput

OUTPUT_TYPE = OutputType(
    name="logstash",
    parse_config=parse_config,
    create=LogstashOutput,
    check=check,
    index=lambda config: config.index,
)

__all__ = ["OUTPUT_TYPE", "LogstashConfig", "LogstashOutput"]
