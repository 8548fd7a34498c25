"""The client TLS context for Logstash connections, with Filebeat's `ssl.*` meanings.

Verification modes: `full` checks the chain and the host name; `strict` also
refuses a certificate whose name is only in the subject CN (no SAN);
`certificate` checks the chain but not the name (for Logstash nodes reached
by an address their certificate does not list); `none` checks nothing.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field

_PROTOCOL_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True)
class TlsSettings:
    certificate_authorities: list[str] = field(default_factory=list)
    certificate: str | None = None
    key: str | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    verification_mode: str = "full"
    supported_protocols: list[str] = field(default_factory=list)


class TlsSetupError(Exception):
    """A TLS setting that cannot be used; `key` is its name under `ssl.`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def build_client_context(settings: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    mode = settings.verification_mode
    if mode == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "certificate":
        context.check_hostname = False
    elif mode == "strict":
        context.hostname_checks_common_name = False
    if settings.supported_protocols:
        versions = sorted(_PROTOCOL_VERSIONS[name] for name in settings.supported_protocols)
        context.minimum_version = versions[0]
        context.maximum_version = versions[-1]
    _load_authorities(context, settings.certificate_authorities)
    _load_client_certificate(context, settings)
    return context


def _load_authorities(context: ssl.SSLContext, authorities: list[str]) -> None:
    """Each entry is a PEM file path or, as Filebeat also allows, the PEM text itself."""
    if not authorities:
        context.load_default_certs()
        return
    for entry in authorities:
        inline = entry.lstrip().startswith("-----BEGIN")
        name = "inline certificate" if inline else entry
        if not inline and not os.path.isfile(entry):
            raise TlsSetupError("certificate_authorities", f"{entry}: file not found")
        try:
            if inline:
                context.load_verify_locations(cadata=entry)
            else:
                context.load_verify_locations(cafile=entry)
        except (ssl.SSLError, ValueError) as exc:
            message = f"{name}: not a PEM CA certificate ({_reason(exc)})"
            raise TlsSetupError("certificate_authorities", message) from None
        except OSError as exc:
            raise TlsSetupError("certificate_authorities", f"{name}: cannot read ({exc.strerror})") from None


def _load_client_certificate(context: ssl.SSLContext, settings: TlsSettings) -> None:
    if not settings.certificate and not settings.key:
        return
    if not settings.certificate or not settings.key:
        missing = "certificate" if not settings.certificate else "key"
        raise TlsSetupError(missing, "ssl.certificate and ssl.key must be set together for client authentication")
    for key, path in (("certificate", settings.certificate), ("key", settings.key)):
        if not os.path.isfile(path):
            raise TlsSetupError(key, f"{path}: file not found")
    try:
        # A passphrase of "" (never None) keeps OpenSSL from prompting on the terminal for an encrypted key.
        context.load_cert_chain(settings.certificate, settings.key, password=settings.key_passphrase or "")
    except ssl.SSLError as exc:
        raise TlsSetupError(
            "key",
            f"cannot load {settings.certificate} with {settings.key}: {_reason(exc)} "
            "(is ssl.key_passphrase right, and does the key belong to the certificate?)",
        ) from None
    except OSError as exc:
        raise TlsSetupError("certificate", f"cannot read the client certificate or key ({exc.strerror})") from None


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else str(exc)

