"""`add_network_direction`: inbound, outbound, internal or external, from two addresses and the internal networks.

`internal_networks` takes CIDRs and the named networks of the `network`
condition (`private`, `loopback`, …), resolved exactly as that condition does.
An event without both addresses, or with one that is not an address, is left
as it is, as in Filebeat.
"""

from __future__ import annotations

from forwarder.pipeline.client import Processor
from forwarder.pipeline.conditions import _in_networks, _network_matcher, _parse_ip
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldPath, put_field
from forwarder.schema.declared import STRING, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

ADD_NETWORK_DIRECTION_SETTINGS = (
    Setting("source", STRING, doc="the source address field, e.g. `source.ip`"),
    Setting("destination", STRING, doc="the destination address field, e.g. `destination.ip`"),
    Setting("target", STRING, doc="the field the direction is written to, e.g. `network.direction`"),
    Setting("internal_networks", STRINGS, doc="CIDRs and network names (`private`, `loopback`, `unicast` …) "
            "that count as internal"),
)


def build_add_network_direction(options: Section) -> Processor:
    values = read_settings(options, ADD_NETWORK_DIRECTION_SETTINGS)
    specs = values["internal_networks"] or []
    if not specs:
        values.error("internal_networks", "list at least one CIDR or network name")
    matchers = [_network_matcher(options, "internal_networks", spec) for spec in specs]
    internal = _in_networks([matcher for matcher in matchers if matcher is not None])
    source, destination = FieldPath(values["source"] or ""), FieldPath(values["destination"] or "")
    target = FieldPath(values["target"] or "network.direction")

    def add_network_direction(event: Event) -> Event:
        source_ip, destination_ip = source.get(event), destination.get(event)
        if not isinstance(source_ip, str) or not isinstance(destination_ip, str):
            return event
        if _parse_ip(source_ip) is None or _parse_ip(destination_ip) is None:
            return event
        source_inside, destination_inside = internal(source_ip), internal(destination_ip)
        if source_inside and destination_inside:
            direction = "internal"
        elif source_inside:
            direction = "outbound"
        elif destination_inside:
            direction = "inbound"
        else:
            direction = "external"
        put_field(event, target, direction)
        return event

    return add_network_direction

