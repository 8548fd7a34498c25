"""The `sophos_xg` processor: a Sophos Firewall (SFOS/XG) syslog record in `message` mapped onto ECS.

The `syslog` input has already taken the syslog header (or the bare `<PRI>`
Sophos often sends alone) into `log.syslog.*`; what is left in `message` is
the `key=value` payload. A line read some other way (a file, a relay that
kept the header in the text) is accepted too: everything before the first
`key=` is skipped. One quirk of the input is undone here: a header without a
hostname (`<30>Nov 16 02:52:23 device_name="SFW" …`) has the first pair taken
as the hostname, which is put back in front of the payload.

The pairs are split by the `kv` processor's parser (quoted values, unquoted
values with spaces, a missing closing quote) and mapped by `XgMapping`. A line
that is not a Sophos record makes the processor raise before it changes the
event: the pipeline forwards it as received, tagged `_parse_failure` with
`error.message`, and counts it in `mapping_failures`.
"""

from __future__ import annotations

import re

from forwarder.modules.sophos_xg_ecs import SophosRecordError, XgMapping
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.processors.kv import KeyValueParser
from forwarder.processors.syslog_message import TIMEZONE
from forwarder.schema.declared import STRING, Setting, read_settings, section_list
from forwarder.schema.section import Section

# Where the payload starts: the first `key=` at the start of the text or after a space.
_PAYLOAD_START = re.compile(r"(?:^|(?<=\s))[A-Za-z0-9_-]+=")

KNOWN_DEVICE_SETTINGS = (
    Setting("serial_number", STRING, doc="the firewall's serial number (`device_serial_id`, `device_id`)"),
    Setting("hostname", STRING, doc="the `host.name` its records get"),
)
SETTINGS = (
    Setting("timezone", TIMEZONE, "Local", "zone of the local `date`/`time` of SFOS ≤ 18.5 records (SFOS 19+ "
            "stamps carry an offset): `Local`, `UTC`, an offset (`+0530`) or an IANA name (`Asia/Kolkata`)"),
    Setting("known_devices", section_list("list of `{serial_number, hostname}`", KNOWN_DEVICE_SETTINGS), [],
            "`host.name` per firewall serial number"),
    Setting("default_host_name", STRING, "firewall.localgroup.local", "`host.name` of a record whose serial "
            "number is not in `known_devices`"),
)


def build_sophos_xg(options: Section) -> Processor:
    """`sophos_xg: {timezone: …, known_devices: [{serial_number, hostname}], default_host_name: …}`."""
    values = read_settings(options, SETTINGS)
    devices = {str(device["serial_number"]): device["hostname"] for device in values["known_devices"]
               if device["serial_number"] and device["hostname"]}
    mapping = XgMapping(values["timezone"], devices, values["default_host_name"])
    parser = KeyValueParser()

    def sophos_xg(event: Event) -> Event:
        fields = event.fields
        message = fields.get("message")
        if not isinstance(message, str):
            raise SophosRecordError("the event has no text in message")
        log = fields.get("log")
        syslog = log.get("syslog") if isinstance(log, dict) else None
        lost_pair = syslog.get("hostname") if isinstance(syslog, dict) else None
        if lost_pair is not None and "=" not in lost_pair:
            lost_pair = None
        text = f"{lost_pair} {message}" if lost_pair else message
        start = _PAYLOAD_START.search(text)
        if start is None:
            raise SophosRecordError("no key=value pair")
        timestamp, mapped = mapping.map(parser.parse(text[start.start():] if start.start() else text))
        if lost_pair:
            del syslog["hostname"]
            fields["message"] = text
        for name, value in mapped.items():
            existing = fields.get(name)
            if type(existing) is dict and type(value) is dict:
                existing.update(value)
            else:
                fields[name] = value
        event.timestamp = timestamp
        return event

    return sophos_xg

