"""The output table: exactly one `output.NAME` section is enabled and looked up here."""

from __future__ import annotations

from forwarder.outputs import console, file, logstash
from forwarder.outputs.base import OutputType

OUTPUT_TYPES: dict[str, OutputType] = {
    output_type.name: output_type
    for output_type in (logstash.OUTPUT_TYPE, file.OUTPUT_TYPE, console.OUTPUT_TYPE)
}
