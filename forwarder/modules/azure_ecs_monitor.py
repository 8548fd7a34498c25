"""ECS fields of the `azure` records that are not Entra ID resources: activity, platform and Graph activity logs.

Activity and platform logs follow what Filebeat's azure ingest pipelines do:
the envelope under `azure.<fileset>.*`, the caller as `source.ip`, the
operation as `event.action`, and `properties` kept as the service wrote it
(no nulls). Graph activity logs are HTTP requests, so they also get the ECS
`http.*`, `url.*` and `user_agent.*` basics.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from forwarder.modules.azure_ecs_envelope import Envelope, outcome, put_ip_address
from forwarder.modules.entraid_ecs_values import copy_present, obj, text, without_nulls

# Claims of the caller in an activity log's `identity.claims`, by what they say.
_UPN_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "unique_name",
)
_OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_INITIATED_BY_CLAIMS = (
    ("name", "fullname"),
    ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "givenname"),
    ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "surname"),
)

_GRAPH_PROPERTY_KEYS = (
    ("apiVersion", "api_version"),
    ("appId", "app_id"),
    ("clientAuthMethod", "client_auth_method"),
    ("clientRequestId", "client_request_id"),
    ("deviceId", "device_id"),
    ("identityProvider", "identity_provider"),
    ("operationId", "operation_id"),
    ("requestId", "request_id"),
    ("roles", "roles"),
    ("scopes", "scopes"),
    ("servicePrincipalId", "service_principal_id"),
    ("signInActivityId", "sign_in_activity_id"),
    ("tokenIssuedAt", "token_issued_at"),
    ("userId", "user_id"),
    ("wids", "wids"),
    ("location", "location"),
)


def activity_fields(fields: dict[str, Any], envelope: Envelope, own: dict[str, Any]) -> None:
    """Azure activity log: identity claims as the user, authorization, properties, outcome."""
    result = outcome(envelope.get("result_type"))
    if result is not None:
        fields["event"]["outcome"] = result
    properties = obj(envelope.get("properties"))
    if properties:
        own["properties"] = without_nulls(properties)
        event_category = text(properties.get("eventCategory"))
        if event_category is not None:
            own["event_category"] = event_category
    if "identity" in own:
        # A name written where the object usually is: kept apart so `identity` stays an object in every event.
        own["identity_name"] = own.pop("identity")
    identity = obj(envelope.get("identity"))
    if not identity:
        return
    kept: dict[str, Any] = {}
    authorization = obj(identity.get("authorization"))
    if authorization:
        kept["authorization"] = without_nulls(authorization)
    claims = obj(identity.get("claims"))
    if claims:
        # Dots in claim URIs would read as object paths downstream; Filebeat writes them as `_` too.
        kept["claims"] = {key.replace(".", "_"): value for key, value in claims.items() if type(value) is str}
        _put_claims_user(fields, claims, kept)
    if kept:
        own["identity"] = kept


def _put_claims_user(fields: dict[str, Any], claims: dict[str, Any], identity: dict[str, Any]) -> None:
    user: dict[str, Any] = {}
    name = next((text(claims.get(key)) for key in _UPN_CLAIMS if text(claims.get(key)) is not None), None)
    if name is not None:
        user["name"] = name
    full_name = text(claims.get("name"))
    if full_name is not None:
        user["full_name"] = full_name
    object_id = next((text(claims.get(key)) for key in _OBJECT_ID_CLAIMS if text(claims.get(key)) is not None), None)
    if object_id is not None:
        user["id"] = object_id
    if user:
        fields["user"] = user
    initiated_by: dict[str, Any] = {}
    copy_present(initiated_by, claims, _INITIATED_BY_CLAIMS)
    if name is not None:
        initiated_by["name"] = name
    if initiated_by:
        identity["claims_initiated_by_user"] = initiated_by


def platform_fields(fields: dict[str, Any], envelope: Envelope, own: dict[str, Any]) -> None:
    """Resource (platform) logs: outcome and `properties` as written; anything else varies by service."""
    result = outcome(envelope.get("result_type"))
    if result is not None:
        fields["event"]["outcome"] = result
    properties = envelope.get("properties")
    if type(properties) is dict and properties:
        own["properties"] = without_nulls(properties)
    elif text(properties) is not None:
        # Some services write properties as JSON text; kept as text rather than guessed at.
        own["properties_text"] = text(properties)


def graph_activity_fields(fields: dict[str, Any], envelope: Envelope, own: dict[str, Any]) -> None:
    """Microsoft Graph activity: one HTTP request to Graph, with the app and principal that made it."""
    properties = obj(envelope.get("properties"))
    event = fields["event"]
    event["category"] = ["web"]
    event["type"] = ["access"]

    http: dict[str, Any] = {}
    method = text(properties.get("requestMethod"))
    if method is not None:
        http["request"] = {"method": method}
    status = _integer(properties.get("responseStatusCode"))
    if status is None:
        status = _integer(envelope.get("result_signature"))
    response: dict[str, Any] = {}
    if status is not None:
        response["status_code"] = status
        event["outcome"] = "success" if status < 400 else "failure"
    size = _integer(properties.get("responseSizeBytes"))
    if size is not None:
        response["bytes"] = size
    if response:
        http["response"] = response
    if http:
        fields["http"] = http

    uri = text(properties.get("requestUri"))
    if uri is not None:
        fields["url"] = _url(uri)
    user_agent = text(properties.get("userAgent"))
    if user_agent is not None:
        fields["user_agent"] = {"original": user_agent}
    put_ip_address(fields, properties.get("ipAddress"))
    if "ip" not in fields.get("source", {}):
        put_ip_address(fields, envelope.get("caller_ip_address"))
    tenant_id = text(properties.get("tenantId"))
    if tenant_id is not None:
        # The resource id spells it in capitals.
        fields["azure"]["tenant_id"] = tenant_id
    user_id = text(properties.get("userId"))
    if user_id is not None:
        fields["user"] = {"id": user_id}
    kept: dict[str, Any] = {}
    copy_present(kept, properties, _GRAPH_PROPERTY_KEYS)
    if kept:
        own["properties"] = kept


def _url(uri: str) -> dict[str, Any]:
    url: dict[str, Any] = {"original": uri}
    try:
        parts = urlsplit(uri)
    except ValueError:
        return url
    if parts.scheme:
        url["scheme"] = parts.scheme
    if parts.hostname:
        url["domain"] = parts.hostname
    if parts.path:
        url["path"] = parts.path
    if parts.query:
        url["query"] = parts.query
    return url


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str and value.strip().isdigit():
        return int(value)
    return None
