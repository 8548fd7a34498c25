"""Which S3 failures are the credentials' fault, and the one line that tells the user what to fix.

Everything else (a timeout, a 5xx, a dropped connection) is worth retrying;
a refused key is not: retrying it every few seconds only fills the log, and
a Cisco-managed bucket's keys expire every 90 days, so this is what a site
meets in practice. The line names the access key id (never the secret) and
the settings to change.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

# S3's codes for a key it does not know, a secret that does not match it, and an expired session.
UNKNOWN_KEY = frozenset(("InvalidAccessKeyId", "InvalidClientTokenId"))
WRONG_SECRET = frozenset(("SignatureDoesNotMatch",))
EXPIRED = frozenset(("ExpiredToken", "InvalidToken", "TokenRefreshRequired"))
KEY_SETTINGS = "access_key_id / secret_access_key (or the profile, environment or role that supplies them)"


def credential_problem(error: BaseException | None, action: str, key: str, *, listing: bool) -> str | None:
    """The user's fix when `error` is a credential failure while doing `action`; None for anything else.

    `key` describes the access key used ("access key id AKIA…"). AccessDenied counts only when
    `listing`: a key that may list but not read one object is that object's problem, not the key's.
    """
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return (f"cannot {action}: no usable AWS credentials ({error}); set {KEY_SETTINGS} in the aws-s3 input "
                "or the module's var.access_key_id / var.secret_access_key")
    if not isinstance(error, ClientError):
        return None
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in UNKNOWN_KEY:
        return (f"cannot {action}: S3 does not know {key} ({code}); the key was deleted, rotated or mistyped: "
                f"set {KEY_SETTINGS} to a current key (Cisco Umbrella keys expire after 90 days; make new ones "
                "in the Umbrella dashboard)")
    if code in WRONG_SECRET:
        return (f"cannot {action}: the secret does not match {key} ({code}); set secret_access_key to the secret "
                "issued with this access key id")
    if code in EXPIRED:
        return (f"cannot {action}: the session credentials of {key} have expired ({code}); renew session_token "
                "or use role_arn so the input renews them itself")
    if code == "AccessDenied" and listing:
        return (f"cannot {action}: {key} may not list this bucket (AccessDenied); grant it s3:ListBucket there, "
                "or check bucket_arn / non_aws_bucket_name and bucket_list_prefix (Cisco-managed buckets allow "
                "only the data path shown in the Umbrella dashboard)")
    return None
