"""ECS fields of Duo's activity, telephony (v2) and Trust Monitor records, as Elastic's cisco_duo pipelines map them.

- Activity: the access device becomes `source.ip`/`source.geo` and
  `user_agent.*`, the actor `user.name` when it is a user, `action.name`
  `event.action`, `outcome.result` (SUCCESS/FAILURE) `event.outcome`; the
  actor's and targets' `details`, JSON encoded as text, are decoded.
- Telephony: Elastic's `telephony_v2` names (`context` → `event_type`,
  `phone` → `phone_number`, `telephony_id` → `id`, also `event.id`), written
  under `cisco_duo.telephony` since the fileset is `telephony`.
- Trust Monitor: the record under `cisco_duo.trust_monitor`, `sekey` as
  `event.id`, and the triage link split into `url.*`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from forwarder.modules.duo_ecs_values import address, put_geo, put_text, put_user_agent, put_value, related

_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure"}
# Activity keys mapped below (the time, and the outcome object whose result is kept); the rest is copied.
_ACTIVITY_SPECIAL_KEYS = frozenset(("access_device", "activity_id", "actor", "target", "old_target", "outcome",
                                    "ts", "eventtype", "host"))
_TELEPHONY_RENAMES = {"context": "event_type", "phone": "phone_number", "telephony_id": "id"}
_TELEPHONY_DROPPED_KEYS = frozenset(("ts", "timestamp", "eventtype", "host"))
_TRUST_MONITOR_DROPPED_KEYS = frozenset(("surfaced_timestamp", "eventtype", "host"))


def activity_fields(record: dict[str, Any]) -> dict[str, Any]:
    get = record.get
    event: dict[str, Any] = {"kind": "event"}
    fields: dict[str, Any] = {"event": event}
    duo: dict[str, Any] = {}
    put_text(duo, "id", get("activity_id"))
    if "id" in duo:
        event["id"] = duo["id"]
    action = get("action")
    put_text(event, "action", action.get("name") if type(action) is dict else action)
    outcome = get("outcome")
    result = outcome.get("result") if type(outcome) is dict else outcome
    if type(result) is str and result:
        duo["outcome"] = result
        if result in _OUTCOMES:
            event["outcome"] = _OUTCOMES[result]

    source: dict[str, Any] = {}
    device = get("access_device")
    if type(device) is dict:
        cisco_device = {key: value for key, value in device.items() if key != "ip"}
        device_ip = device.get("ip")
        raw_ip = device_ip.get("address") if type(device_ip) is dict else device_ip
        ip, _ = address(raw_ip)
        if ip is not None:
            source["ip"] = ip
            cisco_device["ip"] = {**device_ip, "address": ip} if type(device_ip) is dict else {"address": ip}
        put_geo(source, device.get("location"))
        put_user_agent(fields, device)
        put_value(duo, "access_device", cisco_device)
    if source:
        fields["source"] = source

    user_name = None
    for key in ("actor", "target", "old_target"):
        party = get(key)
        if type(party) is dict:
            party = _with_decoded_details(party)
            if key == "actor" and party.get("type") == "user":
                user_name = party.get("name")
                if type(user_name) is not str or not user_name:
                    user_name = None
        put_value(duo, key, party)
    if user_name is not None:
        fields["user"] = {"name": user_name}

    for key, value in record.items():
        if key not in _ACTIVITY_SPECIAL_KEYS:
            put_value(duo, key, value)
    fields["cisco_duo"] = {"activity": duo}
    related(fields, (source.get("ip"),), (user_name,))
    return fields


def telephony_fields(record: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "event"}
    duo: dict[str, Any] = {}
    for key, value in record.items():
        if key not in _TELEPHONY_DROPPED_KEYS:
            put_value(duo, _TELEPHONY_RENAMES.get(key, key), value)
    telephony_id = duo.get("id")
    if type(telephony_id) is str:
        event["id"] = telephony_id
    return {"event": event, "cisco_duo": {"telephony": duo}}


def trust_monitor_fields(record: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "event"}
    duo: dict[str, Any] = {}
    for key, value in record.items():
        if key not in _TRUST_MONITOR_DROPPED_KEYS:
            put_value(duo, key, value)
    put_text(event, "id", duo.get("sekey"))
    fields: dict[str, Any] = {"event": event}
    url = _url_parts(duo.get("triage_event_uri"))
    if url:
        fields["url"] = url
    fields["cisco_duo"] = {"trust_monitor": duo}
    return fields


def _with_decoded_details(party: dict[str, Any]) -> dict[str, Any]:
    """The actor or target with its `details` decoded when it is JSON text (kept as text when it is not)."""
    details = party.get("details")
    if type(details) is not str or not details.startswith(("{", "[")):
        return party
    try:
        return {**party, "details": orjson.loads(details)}
    except orjson.JSONDecodeError:
        return party


def _url_parts(uri: Any) -> dict[str, Any]:
    """`url.original`, `scheme`, `domain`, `port`, `path`, `query`, `fragment` of a link, as Elastic's uri_parts."""
    if type(uri) is not str or not uri:
        return {}
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return {"original": uri}
    url: dict[str, Any] = {"original": uri}
    put_text(url, "scheme", parts.scheme)
    put_text(url, "domain", parts.hostname)
    if port is not None:
        url["port"] = port
    put_text(url, "path", parts.path)
    put_text(url, "query", parts.query)
    put_text(url, "fragment", parts.fragment)
    return url
