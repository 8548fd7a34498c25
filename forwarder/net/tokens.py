"""Access tokens for Microsoft APIs (Graph, O365 Management API) through MSAL's client-credentials flow.

One MSAL application per (authority, tenant, client, credential, CA, proxy) for the whole
process, so every fileset of a tenant shares one token cache and Microsoft sees
one token request per hour instead of one per poll. MSAL talks through a session
that carries our CA bundle and proxy on every call: `requests` lets
REQUESTS_CA_BUNDLE override a session-wide setting. Failures become one
`CredentialError` that says what the user has to fix, never showing the secret.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class Cloud(NamedTuple):
    login_host: str
    graph_host: str


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("login.microsoftonline.com", "graph.microsoft.com"),
    "usgov": Cloud("login.microsoftonline.us", "graph.microsoft.us"),
    "usgov-dod": Cloud("login.microsoftonline.us", "dod-graph.microsoft.us"),
    "china": Cloud("login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"),
}

TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
AADSTS_CODE = re.compile(r"AADSTS(\d+)")


class CredentialError(Exception):
    """A token could not be obtained; `permanent` says whether the user must change something first."""

    def __init__(self, message: str, code: str = "", permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent


@dataclass(frozen=True, repr=False)
class ClientCredential:
    """A client secret, or a certificate with its private key; the secret parts never appear in repr."""

    secret: str | None = None
    certificate_pem: str | None = None
    private_key_pem: str | None = None
    key_passphrase: str | None = None
    thumbprint: str = field(default="", init=False)
    certificate_expires: datetime.datetime | None = field(default=None, init=False)

    @classmethod
    def from_secret(cls, secret: str) -> ClientCredential:
        if not secret:
            raise CredentialError("the client secret is empty")
        return cls(secret=secret)

    @classmethod
    def from_certificate(
        cls, certificate_pem: str, private_key_pem: str, passphrase: str | None = None
    ) -> ClientCredential:
        """Checks up front that the certificate and key load and belong together, so a typo fails at startup."""
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        except ValueError:
            raise CredentialError("the certificate is not a PEM X.509 certificate") from None
        try:
            key = serialization.load_pem_private_key(
                private_key_pem.encode(), passphrase.encode() if passphrase else None
            )
        except TypeError:
            raise CredentialError("the private key is encrypted: set its passphrase (key_passphrase)") from None
        except ValueError:
            raise CredentialError("the private key cannot be read: not a PEM key, or a wrong passphrase") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CredentialError("the private key is not an RSA key (Entra ID accepts RSA certificates only)")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise CredentialError("the private key does not belong to the certificate")
        credential = cls(certificate_pem=certificate_pem, private_key_pem=private_key_pem, key_passphrase=passphrase)
        der = certificate.public_bytes(serialization.Encoding.DER)
        object.__setattr__(credential, "thumbprint", hashlib.sha1(der).hexdigest().upper())
        object.__setattr__(credential, "certificate_expires", certificate.not_valid_after_utc)
        return credential

    @classmethod
    def from_settings(
        cls, secret: str | None, certificate: str | None, key: str | None, passphrase: str | None
    ) -> ClientCredential:
        """The credential a config names: a secret, or a certificate and key given inline as PEM or as files."""
        if secret is not None:
            return cls.from_secret(secret)
        return cls.from_certificate(_pem(certificate or "", "certificate"), _pem(key or "", "key"), passphrase)

    @property
    def kind(self) -> str:
        return "certificate" if self.private_key_pem else "secret"

    def for_msal(self) -> str | dict[str, str]:
        if not self.private_key_pem:
            return self.secret or ""
        credential = {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
        if self.key_passphrase:
            credential["passphrase"] = self.key_passphrase
        return credential

    def fingerprint(self) -> str:
        """Tells credentials apart (to share MSAL applications) without keeping a second copy of the secret."""
        material = self.secret or f"{self.thumbprint}\n{self.private_key_pem}"
        return hashlib.sha256(material.encode()).hexdigest()

    def __repr__(self) -> str:
        if self.private_key_pem:
            return f"ClientCredential(certificate, thumbprint={self.thumbprint})"
        return "ClientCredential(secret=***)"


class PinnedSession(requests.Session):
    """A session that applies its CA bundle, proxy and timeout to every request, whatever the environment says."""

    def __init__(self, ca_bundle: str | None, proxy_url: str | None, timeout: float) -> None:
        super().__init__()
        self.pinned_verify: str | bool = ca_bundle or True
        self.pinned_proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else None
        self.pinned_timeout = timeout
        self.last_status = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.pinned_verify
        if self.pinned_proxies:
            kwargs["proxies"] = self.pinned_proxies
        kwargs.setdefault("timeout", self.pinned_timeout)
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        return response


class _SharedApplication:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.app: msal.ConfidentialClientApplication | None = None
        self.session: PinnedSession | None = None


_applications: dict[tuple[str, str, str, str, str | None, str | None], _SharedApplication] = {}
_applications_lock = threading.Lock()


class TokenProvider:
    """Bearer tokens for one scope; providers of the same app and tenant share one MSAL application and cache."""

    def __init__(
        self,
        authority_host: str,
        tenant_id: str,
        client_id: str,
        credential: ClientCredential,
        scope: str,
        ca_bundle: str | None = None,
        proxy_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        host = authority_host.rstrip("/")
        if "://" not in host:
            host = f"https://{host}"
        if not host.startswith("https://"):
            raise CredentialError(f"the login endpoint {host} must be https:// (MSAL refuses anything else)")
        self.authority = f"{host}/{tenant_id}"
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope
        self.token_requests = 0
        self._credential = credential
        self._ca_bundle = ca_bundle
        self._proxy_url = proxy_url
        self._timeout = timeout
        key = (host.lower(), tenant_id.lower(), client_id.lower(), credential.fingerprint(), ca_bundle, proxy_url)
        with _applications_lock:
            self._shared = _applications.setdefault(key, _SharedApplication())

    def token(self) -> str:
        """A valid access token, from MSAL's cache while it has more than five minutes left."""
        with self._shared.lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as error:
                raise CredentialError(self._describe_network(error), "network", permanent=False) from None
            except msal.exceptions.MsalServiceError:
                status = self._shared.session.last_status if self._shared.session else 0
                raise CredentialError(
                    f"the token endpoint of {self.authority} answered HTTP {status}",
                    f"http_{status}",
                    permanent=status < 500 and status != 429,
                ) from None
            except ValueError:
                status = self._shared.session.last_status if self._shared.session else 0
                raise CredentialError(
                    f"the token endpoint of {self.authority} answered HTTP {status} without a readable body",
                    f"http_{status}",
                    permanent=status < 500 and status != 429,
                ) from None
            if "access_token" in result:
                if result.get("token_source") == "identity_provider":
                    self.token_requests += 1
                return str(result["access_token"])
            raise self._classify(result)

    def refresh(self) -> str:
        """A new token after a resource rejected ours (MSAL has no force_refresh for client credentials)."""
        with self._shared.lock:
            if self._shared.app is not None:
                self._shared.app.remove_tokens_for_client()
            return self.token()

    def _application(self) -> msal.ConfidentialClientApplication:
        shared = self._shared
        if shared.app is not None:
            return shared.app
        session = PinnedSession(self._ca_bundle, self._proxy_url, self._timeout)
        try:
            shared.app = msal.ConfidentialClientApplication(
                self.client_id,
                authority=self.authority,
                client_credential=self._credential.for_msal(),
                instance_discovery=False,
                http_client=session,
            )
        except requests.RequestException as error:
            session.close()
            raise CredentialError(self._describe_network(error), "network", permanent=False) from None
        except ValueError as error:
            session.close()
            raise self._classify_discovery(error, session.last_status) from None
        shared.session = session
        return shared.app

    def _describe_network(self, error: requests.RequestException) -> str:
        if isinstance(error, requests.exceptions.SSLError):
            return f"TLS to {self.authority} failed (check ssl.certificate_authorities): {_first_line(error)}"
        return f"cannot reach {self.authority}: {_first_line(error)}"

    def _classify_discovery(self, error: ValueError, status: int) -> CredentialError:
        text = f"{error} {error.__context__ or ''}"
        match = AADSTS_CODE.search(text)
        if match:
            return self._classify({"error": "invalid_tenant", "error_description": match.group(0)})
        if status >= 500 or status == 429:
            return CredentialError(
                f"the login endpoint {self.authority} answered HTTP {status}", f"http_{status}", permanent=False
            )
        return CredentialError(f"tenant {self.tenant_id} is unknown to {self.authority} (HTTP {status})", "tenant")

    def _classify(self, result: dict[str, Any]) -> CredentialError:
        error = str(result.get("error") or "unknown_error")
        description = str(result.get("error_description") or "")
        match = AADSTS_CODE.search(description)
        codes = result.get("error_codes") or []
        number = match.group(1) if match else (str(codes[0]) if codes else "")
        code = f"AADSTS{number}" if number else error
        app, tenant = self.client_id, self.tenant_id
        known = {
            "7000222": f"the client secret of app {app} has expired: create a new secret and configure its value",
            "7000215": f"invalid client secret for app {app}: use the secret's value (not its ID) from the app "
            "registration",
            "700016": f"application {app} was not found in tenant {tenant}: check client_id and tenant_id, "
            "and that the app is consented in this tenant",
            "90002": f"tenant {tenant} was not found: check tenant_id (and the cloud)",
            "900023": f"tenant {tenant} is not a valid tenant id or domain: check tenant_id",
            "700027": f"the certificate assertion for app {app} was rejected: is this certificate uploaded to "
            "the app registration, and unexpired?",
            "700024": f"the certificate assertion for app {app} is outside its valid time: check this host's clock",
            "7000112": f"application {app} is disabled in tenant {tenant}",
        }
        message = known.get(number)
        status = self._shared.session.last_status if self._shared.session else 0
        transient = error in TRANSIENT_ERRORS or status >= 500 or status == 429
        if message is None:
            summary = description.split("\r\n")[0].split(" Trace ID:")[0].strip() or error
            summary = AADSTS_CODE.sub("", summary, count=1).lstrip(": ").strip()
            message = f"token request for app {app} in tenant {tenant} failed: {summary}"
        return CredentialError(f"{message} ({code})", code, permanent=not transient)


def _pem(value: str, what: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except OSError as error:
        raise CredentialError(f"cannot read the {what} file {value}: {error.strerror}") from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
