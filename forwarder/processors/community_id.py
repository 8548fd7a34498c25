"""`community_id`: the Community ID v1 flow hash of an event's five-tuple, as `network.community_id`.

The same flow gets the same id whichever side is source, on any tool that
implements the published spec (Zeek, Suricata, Filebeat), so events from
different sensors can be joined. An event whose addresses, ports or protocol
are missing or unusable is left as it is (that is not an error: most events
are simply not flows), and so is one that already has the target field.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldPath, put_field
from forwarder.schema.declared import INTEGER, STRING, Setting, read_settings
from forwarder.schema.section import Section

TRANSPORTS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "ipv6-icmp": 58, "icmpv6": 58,
              "eigrp": 88, "ospf": 89, "pim": 103, "sctp": 132}
_ICMP, _ICMP6 = 1, 58
_WITH_PORTS = {6, 17, 132, _ICMP, _ICMP6}
# ICMP message types that have a reply type: the pair is treated like two ports of one flow.
_ICMP_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
                139: 140, 140: 139, 144: 145, 145: 144}

COMMUNITY_ID_SETTINGS = (
    Setting("fields.source_ip", STRING, "source.ip", "the source address field"),
    Setting("fields.source_port", STRING, "source.port", "the source port field"),
    Setting("fields.destination_ip", STRING, "destination.ip", "the destination address field"),
    Setting("fields.destination_port", STRING, "destination.port", "the destination port field"),
    Setting("fields.iana_number", STRING, "network.iana_number", "the IANA protocol number field (read first)"),
    Setting("fields.transport", STRING, "network.transport", "the protocol name field (`tcp`, `udp`, `icmp` …)"),
    Setting("fields.icmp_type", STRING, "icmp.type", "the ICMP type field"),
    Setting("fields.icmp_code", STRING, "icmp.code", "the ICMP code field"),
    Setting("target", STRING, "network.community_id", "the field the id is written to"),
    Setting("seed", INTEGER, 0, "the seed shared by every sensor whose ids must match", minimum=0, maximum=65535),
)


def community_id(seed: int, source: str, destination: str, protocol: int,
                 source_port: int | None, destination_port: int | None) -> str | None:
    """The `1:…` id of a flow; ports are ICMP type and code for ICMP; None when an address is invalid."""
    try:
        src = ipaddress.ip_address(source).packed
        dst = ipaddress.ip_address(destination).packed
    except ValueError:
        return None
    one_way = False
    if protocol in (_ICMP, _ICMP6) and source_port is not None:
        pairs = _ICMP_PAIRS if protocol == _ICMP else _ICMP6_PAIRS
        reply = pairs.get(source_port)
        if reply is None:
            one_way = True
        else:
            destination_port = reply
    ports = protocol in _WITH_PORTS and source_port is not None and destination_port is not None
    if not one_way and (dst, destination_port or 0) < (src, source_port or 0):
        src, dst = dst, src
        source_port, destination_port = destination_port, source_port
    data = seed.to_bytes(2, "big") + src + dst + bytes((protocol, 0))
    if ports:
        data += int(source_port).to_bytes(2, "big") + int(destination_port).to_bytes(2, "big")
    return "1:" + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode("ascii")


def _as_number(value: Any, maximum: int) -> int | None:
    """An unsigned number from an int or decimal/`0x` text, as Filebeat reads ports, ICMP codes and protocols."""
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= maximum else None


def _protocol(value: Any) -> int | None:
    if isinstance(value, str) and value.lower() in TRANSPORTS:
        return TRANSPORTS[value.lower()]
    return _as_number(value, 255)


def build_community_id(options: Section) -> Processor:
    values = read_settings(options, COMMUNITY_ID_SETTINGS)
    field = {name: FieldPath(values[f"fields.{name}"]) for name in (
        "source_ip", "source_port", "destination_ip", "destination_port", "iana_number", "transport",
        "icmp_type", "icmp_code")}
    target = FieldPath(values["target"])
    seed = values["seed"]

    def ports_of(event: Event, protocol: int) -> tuple[int | None, int | None] | None:
        """(source, destination) ports, ICMP (type, code), (None, None) for other protocols; None = not a flow."""
        if protocol in (_ICMP, _ICMP6):
            icmp = (_as_number(field["icmp_type"].get(event), 255), _as_number(field["icmp_code"].get(event), 255))
            # Filebeat hashes an ICMP flow without type and code as type 0, code 0.
            return (0, 0) if None in icmp else icmp
        if protocol in _WITH_PORTS:
            ports = (_as_number(field["source_port"].get(event), 65535),
                     _as_number(field["destination_port"].get(event), 65535))
            return None if None in ports else ports
        return (None, None)

    def community_id_processor(event: Event) -> Event:
        if target.get(event) is not MISSING:
            return event
        source, destination = field["source_ip"].get(event), field["destination_ip"].get(event)
        if not isinstance(source, str) or not isinstance(destination, str):
            return event
        number = field["iana_number"].get(event)
        protocol = _protocol(field["transport"].get(event) if number is MISSING else number)
        ports = None if protocol is None else ports_of(event, protocol)
        if protocol is None or ports is None:
            return event
        flow_id = community_id(seed, source, destination, protocol, *ports)
        if flow_id is not None:
            put_field(event, target, flow_id)
        return event

    community_id_processor.__name__ = "community_id"
    return community_id_processor
