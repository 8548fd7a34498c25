"""The input table: `type:` in an input config is looked up here."""

from __future__ import annotations

from forwarder.inputs import eventhub, filestream, graph, log_input, o365audit, syslog
from forwarder.inputs.base import InputType

INPUT_TYPES: dict[str, InputType] = {
    input_type.name: input_type
    for input_type in (syslog.INPUT_TYPE, filestream.INPUT_TYPE, log_input.INPUT_TYPE, graph.INPUT_TYPE,
                       o365audit.INPUT_TYPE, eventhub.INPUT_TYPE)
}
