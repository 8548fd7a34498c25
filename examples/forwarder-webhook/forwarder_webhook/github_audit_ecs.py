"""GitHub audit-log entries → ECS, as the `github_audit_ecs` processor (registered, so any input can use it).

An entry looks like {"action": "repo.create", "actor": "octocat", "actor_ip":
"192.0.2.1", "created_at": 1718000000000, "org": "acme", "repo": "acme/app",
"user": "someone", "_document_id": "…"}; times are milliseconds since the epoch.
An entry without a textual `action` is not an audit entry: the processor raises,
and the forwarder's one error policy forwards it raw and tagged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from forwarder.pipeline.event import Event
from forwarder.schema.section import Section

Processor = Callable[[Event], Event | None]
# GitHub's action prefixes → ECS event categories (the rest are "configuration" changes of some object).
CATEGORIES = {"org": "iam", "team": "iam", "oauth_access": "authentication", "personal_access_token": "authentication",
              "repo": "configuration", "protected_branch": "configuration", "git": "file"}


def build_github_audit_ecs(options: Section) -> Processor:
    return github_audit_ecs(options.boolean("preserve_original_event", False))


def github_audit_ecs(preserve_original_event: bool = False) -> Processor:
    def map_github_audit_entry(event: Event) -> Event:
        # The record as the input parsed it; configured in `processors:` (after the record is released),
        # the webhook input's body field.
        entry = event.record if event.record is not None else event.fields.get("json")
        if not isinstance(entry, dict):
            return event
        action = entry.get("action")
        if not isinstance(action, str) or not action:
            raise ValueError(f"an audit entry needs a textual action (got {action!r})")
        created = entry.get("created_at", entry.get("@timestamp"))
        timestamp = created / 1000.0 if isinstance(created, (int, float)) and not isinstance(created, bool) else None
        category = action.split(".", 1)[0]
        ecs: dict[str, Any] = {
            "event": {"action": action, "kind": "event", "category": [CATEGORIES.get(category, "configuration")],
                      "type": ["change"]},
            "github": {key: value for key, value in entry.items() if key not in ("action", "_document_id")},
        }
        if entry.get("_document_id"):
            ecs["event"]["id"] = entry["_document_id"]
        if entry.get("actor"):
            ecs["user"] = {"name": entry["actor"]}
            if entry.get("user"):
                ecs["user"]["target"] = {"name": entry["user"]}
        if entry.get("actor_ip"):
            ecs["source"] = {"ip": entry["actor_ip"]}
        if entry.get("org"):
            ecs["organization"] = {"name": entry["org"]}
        if preserve_original_event:
            ecs["event"]["original"] = json.dumps(entry, separators=(",", ":"))
        event.fields.pop("json", None)  # the webhook input's body field: mapped into github.* above
        event.fields.update(ecs)
        if timestamp is not None:
            event.timestamp = timestamp
        return event

    return map_github_audit_entry
