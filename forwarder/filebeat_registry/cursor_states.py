"""Filebeat's `o365audit` cursors and `aws-s3` object states as this forwarder's.

o365audit: Filebeat keys a cursor `o365audit::<tenant>::<content type>` (or
`o365audit::<input id>::<tenant>::<content type>`) and keeps only
`{timestamp: contentCreated of the blob being read, line: its records already
published}`, not which blob that was. Our cursor lists again from that time, so
the blob at exactly `timestamp` is read again whole: at most `line` records are
sent a second time (with the same `@metadata._id`), none is skipped.

aws-s3 (bucket listing): Filebeat keeps `filebeat::aws-s3::state::<bucket><key>
<etag><last modified>` with `{bucket, key, etag, last_modified, stored, failed}`
for objects completely read (`stored`) or given up (`failed`), in no input's
namespace; the state goes to the one listing input of ours that lists that
bucket and key prefix. An object whose etag changes is read again, as before.
"""

from __future__ import annotations

from typing import Any

from forwarder.config.inputs import InputSpec
from forwarder.filebeat_registry.memlog import go_time

O365_PREFIX = "o365audit::"
S3_PREFIX = "filebeat::aws-s3::state::"


def map_o365_cursor(key: str, value: dict[str, Any], specs: list[InputSpec]) -> tuple[str, Any, str] | str | None:
    """(our registry key, our cursor, a description), None when there is nothing to carry over, or why not."""
    parts = key[len(O365_PREFIX):].split("::")
    if len(parts) == 2:
        input_id, (tenant, content_type) = None, parts
    elif len(parts) == 3:
        input_id, tenant, content_type = parts
    else:
        return "unexpected o365audit key"
    cursor = value.get("cursor")
    if cursor is None:
        return None
    if not isinstance(cursor, dict):
        return "its cursor is not an object"
    created = go_time(cursor.get("timestamp"))
    if created is None:
        return None
    line = cursor.get("line", 0)
    candidates = [spec for spec in specs if spec.client.input_type == "o365audit"
                  and tenant in spec.config.tenant_ids and content_type in spec.config.content_types
                  and (input_id is None or spec.client.input_id == input_id)]
    if not candidates:
        named = f" with id {input_id!r}" if input_id else ""
        return f"no o365audit input{named} polls tenant {tenant} content type {content_type}"
    if len(candidates) > 1:
        ids = ", ".join(repr(spec.client.input_id) for spec in candidates)
        return f"several o365audit inputs poll tenant {tenant} content type {content_type} ({ids})"
    spec = candidates[0]
    ours = {"until": created.timestamp(), "delivered": {}, "blob": None}
    again = f"; up to {line} record(s) of that blob are sent again" if isinstance(line, int) and line > 0 else ""
    description = (f"o365audit {spec.client.input_id!r} {tenant} {content_type}: listing resumes at blobs created "
                   f"from {created.isoformat()}{again} (Filebeat's cursor does not name the blob)")
    return f"{spec.client.key_prefix}{tenant}::{content_type}", ours, description


def map_s3_state(value: dict[str, Any], specs: list[InputSpec]) -> tuple[str, Any, str] | str | None:
    bucket, object_key, etag = value.get("bucket"), value.get("key"), value.get("etag")
    if not all(isinstance(item, str) and item for item in (bucket, object_key, etag)):
        return "the state lacks bucket, key or etag"
    if value.get("stored"):
        status = "done"
    elif value.get("failed"):
        status = "failed"
    else:
        return None  # neither flag: Filebeat ignores such states too
    modified = go_time(value.get("last_modified"))
    candidates = [spec for spec in specs if spec.client.input_type == "aws-s3" and not spec.config.queue_url
                  and spec.config.bucket_name == bucket and object_key.startswith(spec.config.bucket_list_prefix)]
    if not candidates:
        return f"no aws-s3 input lists bucket {bucket} with a prefix of key {object_key}"
    if len(candidates) > 1:
        ids = ", ".join(repr(spec.client.input_id) for spec in candidates)
        return f"several aws-s3 inputs list s3://{bucket}/{object_key} ({ids})"
    spec = candidates[0]
    ours = {"etag": etag.strip('"'), "size": 0, "last_modified": modified.timestamp() if modified else 0.0,
            "offset": 0, "status": status}
    description = f"aws-s3 {spec.client.input_id!r} s3://{bucket}/{object_key}: {status}, not read again"
    return f"{spec.client.key_prefix}{bucket}/{object_key}", ours, description
