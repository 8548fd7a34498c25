"""The rule both Microsoft inputs (Graph, Management Activity API) apply to an app registration's credential.

Exactly one kind: a client secret, or a certificate together with its key.
Checked while the config is read, so the mistake names the key the user wrote
long before a token is asked for.
"""

from __future__ import annotations

from forwarder.schema.section import Section


def check_credential_kind(section: Section, secret: str | None, certificate: str | None, key: str | None) -> None:
    if secret is not None and (certificate is not None or key is not None):
        section.error("client_secret", "give either client_secret or certificate + key, not both")
    elif secret is None and certificate is None and key is None:
        section.error("client_secret", "is required (or certificate + key for certificate credentials)")
    elif secret is None and (certificate is None or key is None):
        missing = "key" if key is None else "certificate"
        section.error(missing, "is required: certificate credentials need both certificate and key")
    elif secret is not None and not secret:
        section.error("client_secret", "is empty (is the environment variable or keystore entry set?)")
