"""ECS fields of the alert-shaped Office 365 audit records: DLP policy matches and Security & Compliance alerts.

These records are rare next to sign-ins, mailbox and file operations, and
their fields sit at scattered ECS paths (rules, severities, sender and
recipients), so they are written through the dotted-path `put_path`; the
common record types are mapped with direct writes in forwarder/modules/o365_ecs.py.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import obj, text

_SEVERITIES = {"informational": 1, "low": 2, "medium": 3, "high": 4}

_ALERT_CATEGORIES = {
    "accessgovernance": "authentication",
    "datagovernance": "file",
    "datalossprevention": "file",
    "threatmanagement": "malware",
}


def put_path(fields: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted ECS path, creating the objects on the way; a None value is left out."""
    if value is None:
        return
    *parents, leaf = path.split(".")
    target = fields
    for key in parents:
        child = target.get(key)
        if type(child) is not dict:
            child = target[key] = {}
        target = child
    target[leaf] = value


def dlp_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    put_path(fields, "event.kind", "alert")
    put_path(fields, "event.category", ["file"])
    put_path(fields, "event.type", ["access"])
    sharepoint = obj(record.get("SharePointMetaData"))
    put_path(fields, "user.id", text(sharepoint.get("From")))
    put_path(fields, "file.name", text(sharepoint.get("FileName")))
    put_path(fields, "url.original", text(sharepoint.get("FilePathUrl")))
    put_path(fields, "file.inode", text(sharepoint.get("UniqueId")) or text(sharepoint.get("UniqueID")))
    put_path(fields, "file.owner", text(sharepoint.get("FileOwner")))
    exchange = obj(record.get("ExchangeMetaData"))
    put_path(fields, "source.user.email", text(exchange.get("From")))
    recipients: list[str] = []
    for key in ("To", "CC", "BCC"):
        value = exchange.get(key)
        recipients.extend(item for item in (value if type(value) is list else [value]) if type(item) is str and item)
    put_path(fields, "destination.user.email", _one_or_list(recipients))
    put_path(fields, "rule.id", text(record.get("PolicyId")))
    put_path(fields, "rule.name", text(record.get("PolicyName")))
    _put_dlp_rules(record, fields)


def _put_dlp_rules(record: dict[str, Any], fields: dict[str, Any]) -> None:
    """Rules matched, the highest severity, and whether access went ahead (nothing blocked it, or it was overridden)."""
    policies = record.get("PolicyDetails")
    if type(policies) is not list:
        return
    ids: list[str] = []
    names: list[str] = []
    severity = -1
    blocked = False
    for policy in policies:
        rules = obj(policy).get("Rules")
        for rule in rules if type(rules) is list else []:
            rule = obj(rule)
            rule_id, name = text(rule.get("RuleId")), text(rule.get("RuleName"))
            if rule_id is not None and name is not None:
                ids.append(rule_id)
                names.append(name)
            severity = max(severity, _severity(rule.get("Severity")) or -1)
            actions = rule.get("Actions")
            blocked = blocked or (type(actions) is list and "BlockAccess" in actions)
    put_path(fields, "rule.id", _one_or_list(ids))
    put_path(fields, "rule.name", _one_or_list(names))
    if severity >= 0:
        put_path(fields, "event.severity", severity)
    put_path(fields, "event.outcome", "failure" if blocked and not _block_overridden(record) else "success")


def _block_overridden(record: dict[str, Any]) -> bool:
    operation = (text(record.get("Operation")) or "").lower()
    if operation == "dlpruleundo":
        return True
    if operation == "dlpinfo":
        return False
    exception = record.get("ExceptionInfo")
    return exception is not None and exception != ""


def security_alert_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    put_path(fields, "event.kind", "alert")
    category = text(record.get("Category"))
    put_path(fields, "event.category", [_ALERT_CATEGORIES.get((category or "").lower(), "authentication")])
    put_path(fields, "event.type", ["info"])
    put_path(fields, "event.severity", _severity(record.get("Severity")))
    put_path(fields, "rule.name", text(record.get("Name")))
    put_path(fields, "rule.id", text(record.get("PolicyId")))
    put_path(fields, "rule.category", category)
    put_path(fields, "rule.ruleset", text(record.get("EntityType")))
    entity = text(record.get("AlertEntityId"))
    put_path(fields, "rule.description", entity)
    links = record.get("AlertLinks")
    hrefs = [text(obj(link).get("AlertLinkHref")) for link in links] if type(links) is list else []
    put_path(fields, "rule.reference", _one_or_list([href for href in hrefs if href is not None]))
    entity_type = text(record.get("EntityType"))
    if entity_type == "User":
        put_path(fields, "user.id", entity)
    elif entity_type in ("Recipients", "Sender"):
        put_path(fields, "user.email", entity)


def _severity(value: Any) -> int | None:
    return _SEVERITIES.get(value.lower()) if type(value) is str else None


def _one_or_list(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values
