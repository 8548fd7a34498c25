"""ECS fields of Duo's v1 logs (administrator and offline enrollment), as Elastic's cisco_duo pipelines map them.

Both records carry `description`, a JSON object encoded as a string. Elastic
decodes the administrator's into `cisco_duo.admin.flattened` (an index field
of type `flattened`, which takes any keys), with `Errors`/`status` lifted to
`cisco_duo.admin.errors`/`status`; a description that is not a JSON object is
text meant for people, written as `event.reason` (and kept as
`cisco_duo.admin.description`). The offline enrollment description holds the
host, user agent and factor of the enrolling machine (`event.reason` when it
does not decode).

The administrator action names classify the event (`event.category: iam`,
`event.type`, a failure `event.outcome`) with Elastic's lists below.
"""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.modules.duo_ecs_values import put_text, put_value, related

_IAM_ACTIONS = frozenset((
    "admin_2fa_error", "admin_account_switch", "admin_activation_create", "admin_activation_delete",
    "admin_activate_duo_push", "admin_create", "admin_delete", "admin_factor_restrictions_update", "admin_login",
    "admin_login_error", "admin_reactivates_duo_push", "admin_reset_password", "admin_self_activate",
    "admin_send_reset_password_email", "admin_update", "adminapi_request_ip_denied", "bypass_create",
    "bypass_delete", "bypass_view", "phone_associate", "phone_create", "phone_delete", "phone_disassociate",
    "phone_update", "group_create", "group_delete", "group_update", "user_bulk_activate", "user_bulk_enroll",
    "user_create", "user_delete", "user_import", "user_pending_delete", "user_restore", "user_update",
))
_FAILURE_ACTIONS = frozenset((
    "ad_sync_failed", "admin_2fa_error", "admin_login_error", "azure_sync_fail", "openldap_sync_failed",
))
_ADMIN_TYPE_ACTIONS = frozenset((
    "activation_create_link", "activation_delete_link", "activation_send_link", "admin_2fa_error",
    "admin_account_switch", "admin_activation_create", "admin_activation_delete", "admin_activate_duo_push",
    "admin_create", "admin_delete", "admin_factor_restrictions_update", "admin_login", "admin_login_error",
    "admin_reactivates_duo_push", "admin_reset_password", "admin_self_activate", "admin_send_reset_password_email",
    "admin_update", "adminapi_request_ip_denied",
))
_GROUP_TYPE_ACTIONS = frozenset((
    "group_create", "group_delete", "group_update", "integration_group_policy_add",
    "integration_group_policy_remove", "policy_create", "policy_delete", "policy_update",
))
_USER_TYPE_ACTIONS = frozenset((
    "ad_sync_by_user_begin", "ad_sync_by_user_finish", "azure_sync_by_user_begin", "azure_sync_by_user_finish",
    "bypass_create", "bypass_delete", "bypass_view", "openldap_sync_begin", "openldap_sync_by_user_begin",
    "phone_associate", "phone_create", "phone_delete", "phone_disassociate", "phone_update", "user_bulk_activate",
    "user_bulk_enroll", "user_create", "user_delete", "user_import", "user_pending_delete", "user_restore",
    "user_update",
))
_INFO_TYPE_ACTIONS = frozenset((
    "ad_sync_begin", "ad_sync_failed", "ad_sync_finish", "azure_directory_create", "azure_directory_update",
    "azure_directory_delete", "azure_sync_begin", "azure_sync_finish", "azure_sync_fail", "create_child_customer",
    "credits_update", "customer_update", "delete_child_customer", "directory_create", "directory_delete",
    "directory_groups_update", "directory_sync_pause", "directory_sync_resume", "directory_update",
    "edition_update", "feature_add", "feature_delete", "hardtoken_create", "hardtoken_delete", "hardtoken_resync",
    "hardtoken_update", "integration_create", "integration_delete", "integration_policy_assign",
    "integration_policy_unassign", "integration_skey_view", "integration_update", "openldap_sync_by_user_finish",
    "openldap_sync_config_download", "openldap_sync_failed", "openldap_sync_finish", "regen_mobile", "regen_sms",
    "resend_enroll_codes", "send_enroll_code",
))
# Keys of the v1 records that the mappings below write somewhere (or drop: times, and the keys duo_client adds).
_ADMIN_MAPPED_KEYS = frozenset(("action", "description", "isotimestamp", "object", "timestamp", "username",
                                "eventtype", "host"))
_OFFLINE_DESCRIPTION_KEYS = ("hostname", "user_agent", "factor")


def admin_fields(record: dict[str, Any]) -> dict[str, Any]:
    get = record.get
    action = get("action")
    if type(action) is not str:
        action = None
    event: dict[str, Any] = {"kind": "event", "outcome": "failure" if action in _FAILURE_ACTIONS else "success"}
    if action:
        event["action"] = action
        if action in _IAM_ACTIONS:
            event["category"] = ["iam"]
        event_types = _event_types(action)
        if event_types:
            event["type"] = event_types
    fields: dict[str, Any] = {"event": event}
    duo: dict[str, Any] = {}
    put_text(duo, "action", action)

    user: dict[str, Any] = {}
    user_name = get("username")
    if type(user_name) is str and user_name:
        user["name"] = user_name
        duo["user"] = {"name": user_name}
    else:
        user_name = None
    target = get("object")
    if type(target) is str and target:
        user["target"] = {"name": target}
        duo["action_performed_on"] = target

    description = get("description")
    decoded = decode_description(description)
    if decoded is not None:
        put_value(duo, "flattened", decoded)
        put_value(duo, "errors", decoded.get("Errors"))
        put_value(duo, "status", decoded.get("status"))
        if action == "admin_self_activate":
            put_text(user, "email", decoded.get("email"))
        elif action == "user_update":
            changes: dict[str, Any] = {}
            put_text(changes, "name", decoded.get("realname"))
            put_text(changes, "email", decoded.get("email"))
            if changes:
                user["changes"] = changes
    elif type(description) is str and description:
        event["reason"] = description
        duo["description"] = description
    if user:
        fields["user"] = user
    for key, value in record.items():
        if key not in _ADMIN_MAPPED_KEYS:
            put_value(duo, key, value)
    fields["cisco_duo"] = {"admin": duo}
    related(fields, (), (user_name,))
    return fields


def offline_enrollment_fields(record: dict[str, Any]) -> dict[str, Any]:
    get = record.get
    event: dict[str, Any] = {"kind": "event"}
    put_text(event, "action", get("action"))
    fields: dict[str, Any] = {"event": event}
    duo: dict[str, Any] = {}
    put_text(duo, "action", get("action"))
    put_text(duo, "object", get("object"))
    user_name = get("username")
    if type(user_name) is str and user_name:
        fields["user"] = {"name": user_name}
        duo["user"] = {"name": user_name}
    else:
        user_name = None
    description = get("description")
    decoded = decode_description(description)
    if decoded is not None:
        details: dict[str, Any] = {}
        for key in _OFFLINE_DESCRIPTION_KEYS:
            put_text(details, key, decoded.get(key))
        if details:
            duo["description"] = details
    elif type(description) is str and description:
        event["reason"] = description
    for key, value in record.items():
        if key not in _ADMIN_MAPPED_KEYS:
            put_value(duo, key, value)
    fields["cisco_duo"] = {"offline_enrollment": duo}
    related(fields, (), (user_name,))
    return fields


def decode_description(description: Any) -> dict[str, Any] | None:
    """The JSON object a v1 `description` encodes (an object Duo sent already decoded is taken as is); else None."""
    if type(description) is dict:
        return description
    if type(description) is not str or not description.startswith("{"):
        return None
    try:
        decoded = orjson.loads(description)
    except orjson.JSONDecodeError:
        return None
    return decoded if type(decoded) is dict else None


def _event_types(action: str) -> list[str]:
    """`event.type` of an administrator action: its group, then creation/change/deletion from its name."""
    event_types = []
    if action in _ADMIN_TYPE_ACTIONS:
        event_types.append("admin")
    if action in _GROUP_TYPE_ACTIONS:
        event_types.append("group")
    if action in _USER_TYPE_ACTIONS:
        event_types.append("user")
    if action in _INFO_TYPE_ACTIONS:
        event_types.append("info")
    if "create" in action:
        event_types.append("creation")
    if "update" in action:
        event_types.append("change")
    if "delete" in action:
        event_types.append("deletion")
    return event_types
