"""The `microsoft` module: Microsoft Defender for Endpoint and Defender XDR, one entry per fileset.

Written the way Filebeat's `modules.d/microsoft.yml` is: one key per fileset,
each with `enabled` and its own `var.*`; module-wide `var.*` (written under the
module entry itself) are defaults every fileset may override. Each fileset has
its own expander in `FILESETS`, which renders the settings of an existing input
type (the input validates them, so a mistake is reported against the module
file and the key written) and chooses the fileset's mapping processors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.modules.base import FilesetInput
from forwarder.modules.microsoft_defender_atp import expand_defender_atp
from forwarder.modules.microsoft_m365 import expand_m365_defender
from forwarder.modules.microsoft_m365_event import expand_m365_defender_event
from forwarder.schema.section import Section

# Fileset → its expander: (the fileset's section, the module-wide var mapping) → its inputs (none when disabled).
FilesetExpander = Callable[[Section, dict[str, Any]], list[FilesetInput]]
FILESETS: dict[str, FilesetExpander] = {
    "defender_atp": expand_defender_atp,
    "m365_defender": expand_m365_defender,
    "m365_defender_event": expand_m365_defender_event,
}


class MicrosoftModule:
    name = "microsoft"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = entry.mapping("var", {})
        inputs: list[FilesetInput] = []
        for fileset, expand in FILESETS.items():
            if entry.has(fileset):
                inputs += expand(entry.section(fileset), module_vars)
        entry.finish()
        return inputs


MODULE_TYPE = MicrosoftModule()
