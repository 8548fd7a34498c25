"""ECS mapping of a Microsoft Defender for Endpoint alert, as Filebeat's `defender_atp` pipeline maps it.

The `defender-atp` input publishes each alert either whole (`evidence` a list)
or, with `split_evidence: true`, once per evidence (`evidence` one object,
Filebeat's shape). ECS has one `file`, one `process` and one `url` per event:
with a single evidence they come from it; with a list, each comes from the
first evidence that has one, and every evidence's IPs, hashes and users go to
`related.*`. Everything not moved to ECS is kept under
`microsoft.defender_atp.*` with Microsoft's key names, null, "", "-" and "N/A"
left out (Filebeat removes them too). Mapping never raises on odd input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from forwarder.modules.entraid_ecs_values import millisecond_time, parse_time, text

SEVERITIES = {"unspecified": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}
EMPTY_VALUES = frozenset({"", "-", "N/A"})
# Evidence keys whose values are gathered, from every evidence, into related.*.
RELATED_KEYS = (("ip", "ipAddress"), ("hash", "sha1"), ("hash", "sha256"), ("user", "accountName"),
                ("user", "userPrincipalName"))
# Alert keys whose value moved to an ECS field and is not repeated under microsoft.defender_atp.
MOVED_KEYS = frozenset({"id", "title", "description", "severity", "alertCreationTime", "firstEventTime",
                        "lastEventTime", "lastUpdateTime", "computerDnsName", "aadTenantId", "machineId",
                        "detectionSource"})


class MappedAlert(NamedTuple):
    fields: dict[str, Any]
    timestamp: float | None


def map_alert(alert: dict[str, Any]) -> MappedAlert:
    """The ECS fields of one alert (or alert × evidence) and its `@timestamp` (the last update time)."""
    event: dict[str, Any] = {"kind": "alert", "provider": "defender_atp", "timezone": "UTC"}
    fields: dict[str, Any] = {"event": event, "cloud": {"provider": "azure"},
                              "observer": {"vendor": "Microsoft", "product": "Defender ATP"}}
    _put_event(event, alert)
    title = text(alert.get("title"))
    if title:
        fields["message"] = title
    description = text(alert.get("description"))
    if description:
        fields["rule"] = {"description": description}
    detection_source = text(alert.get("detectionSource"))
    if detection_source:
        fields["observer"]["name"] = detection_source
    category = text(alert.get("category"))
    if category:
        event["action"] = category
        fields["threat"] = {"framework": "MITRE ATT&CK", "technique": {"name": [category]}}
    _put_host_and_user(fields, alert)
    evidence = alert.get("evidence")
    items = [evidence] if type(evidence) is dict else [e for e in evidence if type(e) is dict] \
        if type(evidence) is list else []
    _put_evidence(fields, items)
    event["category"] = ["host", *(["process"] if "process" in fields else []),
                         *(["malware"] if text(alert.get("threatFamilyName")) else [])]
    rest = _kept(alert)
    if rest:
        fields["microsoft"] = {"defender_atp": rest}
    updated = parse_time(alert.get("lastUpdateTime"))
    return MappedAlert(fields, None if updated is None else millisecond_time(updated))


def _put_event(event: dict[str, Any], alert: dict[str, Any]) -> None:
    alert_id = text(alert.get("id"))
    if alert_id:
        event["id"] = alert_id
    severity = SEVERITIES.get(str(alert.get("severity") or "").lower())
    if severity is not None:
        event["severity"] = severity
    created = alert.get("alertCreationTime")
    if parse_time(created) is not None:
        event["created"] = created
    start_text, end_text = alert.get("firstEventTime"), alert.get("lastEventTime")
    start, end = parse_time(start_text), parse_time(end_text)
    if start is not None:
        event["start"] = start_text
    if end is not None:
        event["end"] = end_text
    if start is not None and end is not None and end >= start:
        event["duration"] = round((end - start) * 1_000_000) * 1000
    status = str(alert.get("status") or "")
    event["type"] = ["creation", "start"] if status == "New" else ["end"] if status == "Resolved" else ["info"]


def _put_host_and_user(fields: dict[str, Any], alert: dict[str, Any]) -> None:
    host_name = text(alert.get("computerDnsName"))
    if host_name:
        fields["host"] = {"hostname": host_name, "name": host_name}
    related_user = alert.get("relatedUser")
    if type(related_user) is dict:
        user = {name: value for name, value in (("name", text(related_user.get("userName"))),
                                                 ("domain", text(related_user.get("domainName")))) if value}
        if user:
            fields["user"] = user
            fields.setdefault("host", {})["user"] = dict(user)
    tenant, machine = text(alert.get("aadTenantId")), text(alert.get("machineId"))
    if tenant:
        fields["cloud"]["account"] = {"id": tenant}
    if machine:
        fields["cloud"]["instance"] = {"id": machine}


def _put_evidence(fields: dict[str, Any], items: list[dict[str, Any]]) -> None:
    related: dict[str, list[str]] = {}
    for item in items:
        if "file" not in fields:
            _put_file(fields, item)
        if "process" not in fields:
            _put_process(fields, item)
        url = item.get("url")
        if type(url) is str and url and "url" not in fields:
            fields["url"] = {"full": url}
        sid = item.get("userSid")
        if type(sid) is str and sid and "id" not in fields.get("user", ()):
            fields.setdefault("user", {})["id"] = sid
        for related_name, key in RELATED_KEYS:
            value = item.get(key)
            if type(value) is str and value not in EMPTY_VALUES:
                values = related.setdefault(related_name, [])
                if value not in values:
                    values.append(value)
    if related:
        fields["related"] = related


def _put_file(fields: dict[str, Any], item: dict[str, Any]) -> None:
    file: dict[str, Any] = {}
    for ecs_name, key in (("name", "fileName"), ("directory", "filePath")):
        value = text(item.get(key))
        if value:
            file[ecs_name] = value
    if "name" in file and "directory" in file:
        separator = "\\" if "\\" in file["directory"] else "/"
        file["path"] = f"{file['directory'].rstrip(separator)}{separator}{file['name']}"
    hashes = {name: value for name in ("sha1", "sha256") if (value := text(item.get(name)))}
    if hashes:
        file["hash"] = hashes
    if file:
        fields["file"] = file


def _put_process(fields: dict[str, Any], item: dict[str, Any]) -> None:
    process: dict[str, Any] = {}
    pid = item.get("processId")
    if type(pid) is int:
        process["pid"] = pid
    command_line = text(item.get("processCommandLine"))
    if command_line:
        process["command_line"] = command_line
    start = text(item.get("processCreationTime"))
    if start:
        process["start"] = start
    parent: dict[str, Any] = {}
    parent_pid = item.get("parentProcessId")
    if type(parent_pid) is int:
        parent["pid"] = parent_pid
    parent_start = text(item.get("parentProcessCreationTime"))
    if parent_start:
        parent["start"] = parent_start
    if process:
        if parent:
            process["parent"] = parent
        fields["process"] = process


def _kept(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert without its moved keys and without empty members, nested ones included."""
    return _cleaned_object(alert, MOVED_KEYS) or {}


def _cleaned_object(value: dict[str, Any], skipped: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Loops rather than recursing on every value: this runs over every key of every alert and evidence."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if item is None or key in skipped:
            continue
        if kind is str:
            if item in EMPTY_VALUES:
                continue
        elif kind is dict:
            item = _cleaned_object(item)
            if item is None:
                continue
        elif kind is list:
            item = _cleaned_list(item)
            if item is None:
                continue
        kept[key] = item
    return kept or None


def _cleaned_list(value: list[Any]) -> list[Any] | None:
    kept = []
    for item in value:
        kind = type(item)
        if item is None or (kind is str and item in EMPTY_VALUES):
            continue
        if kind is dict:
            item = _cleaned_object(item)
        elif kind is list:
            item = _cleaned_list(item)
        if item is not None:
            kept.append(item)
    return kept or None
