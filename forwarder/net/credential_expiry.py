"""When the app registration's credential runs out, so a forwarder does not go dark on the day a secret lapses.

Microsoft's token response says nothing about the credential that obtained it.
A certificate carries its own end date. A client secret's end date lives only
on the application object in Graph (`passwordCredentials[].endDateTime`), and
the secret in use is recognised there by its hint: the first three characters
the portal shows. Reading the application object needs Application.Read.All or
Directory.Read.All; an app without either gets a reason instead of a date, and
the forwarder carries on: this check only informs, it never stops an input.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from urllib.parse import quote

from forwarder.net.http_client import HttpClient, PermanentHttpError, RetriesExhausted
from forwarder.net.tokens import ClientCredential

WARN_WITHIN = datetime.timedelta(days=30)
HINT_LENGTH = 3


@dataclass(frozen=True)
class CredentialExpiry:
    """The end date of the credential in use, or why it is unknown (`expires` None, `unknown_reason` set)."""

    kind: str
    description: str
    expires: datetime.datetime | None = None
    unknown_reason: str = ""

    def days_left(self, now: datetime.datetime) -> float | None:
        if self.expires is None:
            return None
        return (self.expires - now).total_seconds() / 86400.0

    def expires_soon(self, now: datetime.datetime) -> bool:
        return self.expires is not None and self.expires - now <= WARN_WITHIN

    def warning(self, client_id: str, now: datetime.datetime) -> str:
        days = self.days_left(now) or 0.0
        when = f"{self.expires:%Y-%m-%d %H:%M} UTC"
        if days <= 0:
            return (f"the {self.description} of app {client_id} expired on {when}: "
                    "create a new one and update the keystore")
        left = "less than a day" if days < 1 else f"{int(days)} days"
        return (f"the {self.description} of app {client_id} expires on {when} (in {left}): "
                f"create a new one and update the keystore before then")

    def as_stats(self) -> dict[str, str]:
        if self.expires is None:
            return {"credential_expires": "unknown", "credential_expiry_unknown_reason": self.unknown_reason}
        return {"credential_expires": self.expires.strftime("%Y-%m-%dT%H:%M:%SZ")}


def credential_expiry(
    credential: ClientCredential, http: HttpClient, graph_root: str, client_id: str
) -> CredentialExpiry:
    """Raises StopRequested when the forwarder stops mid-request; every other failure becomes an unknown expiry."""
    if credential.kind == "certificate":
        return CredentialExpiry("certificate", f"certificate {credential.thumbprint}", credential.certificate_expires)
    return _secret_expiry(credential.secret or "", http, graph_root, client_id)


def _secret_expiry(secret: str, http: HttpClient, graph_root: str, client_id: str) -> CredentialExpiry:
    url = f"{graph_root.rstrip('/')}/v1.0/applications(appId='{quote(client_id, safe='')}')"
    try:
        application = http.get_json(url, params={"$select": "displayName,passwordCredentials"})
    except PermanentHttpError as error:
        if error.status == 403:
            reason = ("reading the app registration needs Application.Read.All or Directory.Read.All "
                      f"({error.code or 'HTTP 403'})")
        elif error.status == 404:
            reason = "the app registration is not in this tenant (a multi-tenant app is read in its home tenant)"
        else:
            reason = str(error)
        return CredentialExpiry("secret", "client secret", unknown_reason=reason)
    except RetriesExhausted as error:
        return CredentialExpiry("secret", "client secret", unknown_reason=str(error))
    credentials = application.get("passwordCredentials") if isinstance(application, dict) else None
    if not isinstance(credentials, list):
        return CredentialExpiry("secret", "client secret", unknown_reason="the app registration lists no secrets")
    hint = secret[:HINT_LENGTH]
    ends = [_parse_end(item) for item in credentials if isinstance(item, dict) and item.get("hint") == hint]
    known = [(end, name) for end, name in ends if end is not None]
    if not known:
        return CredentialExpiry("secret", "client secret",
                                unknown_reason="no secret of the app registration matches the configured one")
    end, name = max(known, key=lambda pair: pair[0])
    description = f"client secret {name!r}" if name else "client secret"
    return CredentialExpiry("secret", description, end)


def _parse_end(item: dict) -> tuple[datetime.datetime | None, str]:
    name = item.get("displayName") if isinstance(item.get("displayName"), str) else ""
    text = item.get("endDateTime")
    if not isinstance(text, str):
        return None, name
    try:
        end = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, name
    return (end if end.tzinfo else end.replace(tzinfo=datetime.UTC)), name
