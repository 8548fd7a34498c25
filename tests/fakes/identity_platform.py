"""The Microsoft identity platform (login.microsoftonline.com) as MSAL uses it for client credentials.

Serves the tenant's OpenID configuration and the v2.0 token endpoint on a
FakeHttpsServer, checks client secrets or certificate assertions (signature,
x5t, aud, iss, sub, exp) and answers errors in AAD's shape, starting with the
AADSTS code. Tokens it issues are opaque and remembered, so a Graph or O365 fake
on the same server can call `authorize(request)` and reject unknown, revoked or
expired tokens with 401 as the real resources do.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fakes.https_server import FakeHttpsServer, Reply, Request

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TENANT_FORMAT = re.compile(r"[0-9a-fA-F-]{36}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@dataclass
class RegisteredApp:
    client_id: str
    secrets: set[str] = field(default_factory=set)
    expired_secrets: set[str] = field(default_factory=set)
    certificates: dict[str, object] = field(default_factory=dict)
    disabled: bool = False


@dataclass
class IssuedToken:
    tenant_id: str
    client_id: str
    scope: str
    expires_at: float


class FakeIdentityPlatform:
    """Register tenants and apps, then point MSAL at `authority_host`; `token_requests` counts grants asked for."""

    def __init__(self, server: FakeHttpsServer, token_lifetime: int = 3600, clock: Callable[[], float] = time.time):
        self.server = server
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.clock_offset = 0.0
        self.tenants: dict[str, dict[str, RegisteredApp]] = {}
        self.issued: dict[str, IssuedToken] = {}
        self.token_requests = 0
        # When set, a rejected client_secret is quoted back in error_description, as a badly behaved endpoint
        # (or a proxy in front of it) may do: the forwarder must redact it wherever the error text travels.
        self.echo_rejected_secrets = False
        self._lock = threading.Lock()
        server.route("GET", r"/([^/]+)/v2\.0/\.well-known/openid-configuration", self._openid_configuration)
        server.route("POST", r"/([^/]+)/oauth2/v2\.0/token", self._token)

    @property
    def authority_host(self) -> str:
        return self.server.url

    def add_tenant(self, tenant_id: str) -> None:
        self.tenants.setdefault(tenant_id.lower(), {})

    def register_app(
        self, tenant_id: str, client_id: str, secret: str | None = None, certificate_pem: str | None = None
    ) -> RegisteredApp:
        self.add_tenant(tenant_id)
        app = self.tenants[tenant_id.lower()].setdefault(client_id, RegisteredApp(client_id))
        if secret:
            app.secrets.add(secret)
        if certificate_pem:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
            thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest()
            app.certificates[base64.urlsafe_b64encode(thumbprint).decode().rstrip("=")] = certificate.public_key()
        return app

    def expire_secret(self, tenant_id: str, client_id: str, secret: str) -> None:
        self.tenants[tenant_id.lower()][client_id].expired_secrets.add(secret)

    def advance(self, seconds: float) -> None:
        """Moves the platform's clock (token expiry as resources see it) without MSAL noticing."""
        self.clock_offset += seconds

    def revoke_all(self) -> None:
        with self._lock:
            self.issued.clear()

    def now(self) -> float:
        return self.clock() + self.clock_offset

    def authorize(self, request: Request, audience: str | None = None) -> Reply | None:
        """None when the bearer token is valid (and for `audience`, if given); else the resource's 401 answer."""
        header = request.header("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            issued = self.issued.get(token)
        if issued is None or issued.expires_at <= self.now():
            reason = "Access token has expired or is not yet valid." if issued else "Access token validation failure."
        elif audience is not None and not issued.scope.startswith(audience):
            reason = "Invalid audience."
        else:
            return None
        body = {"error": {"code": "InvalidAuthenticationToken", "message": reason, "innerError": self._inner()}}
        return Reply.json(body, 401, {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})

    def _openid_configuration(self, request: Request, match: re.Match[str]) -> Reply:
        tenant = match.group(1)
        problem = self._tenant_problem(tenant)
        if problem:
            return problem
        base = f"{self.server.url}/{tenant}"
        return Reply.json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{self.server.url}/{tenant}/discovery/v2.0/keys",
                "issuer": f"{self.server.url}/{tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
            }
        )

    def _token(self, request: Request, match: re.Match[str]) -> Reply:
        with self._lock:
            self.token_requests += 1
        tenant = match.group(1)
        problem = self._tenant_problem(tenant)
        if problem:
            return problem
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return self._error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        app = self.tenants[tenant.lower()].get(client_id)
        if app is None:
            return self._error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                "happen if the application has not been installed by the administrator of the tenant.",
            )
        if app.disabled:
            return self._error(400, "unauthorized_client", 7000112, f"Application '{client_id}' is disabled.")
        failure = self._check_client(app, tenant, form, request)
        if failure:
            return failure
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return self._error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid.")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.issued[token] = IssuedToken(tenant.lower(), client_id, scope, self.now() + self.token_lifetime)
        lifetime = self.token_lifetime
        return Reply.json(
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _check_client(self, app: RegisteredApp, tenant: str, form: dict[str, str], request: Request) -> Reply | None:
        secret = form.get("client_secret")
        if secret is not None:
            if secret in app.expired_secrets:
                return self._error(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure portal "
                    "to create new keys for your app.",
                )
            if secret not in app.secrets and self.echo_rejected_secrets:
                return self._error(
                    400, "invalid_request", 50000,
                    f"There was an error issuing a token for request client_id={app.client_id}&"
                    f"client_secret={secret}&grant_type=client_credentials.",
                )
            if secret not in app.secrets:
                return self._error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    "secret value, not the client secret ID, for a secret added to app "
                    f"'{app.client_id}'.",
                )
            return None
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return self._error(
                401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'."
            )
        return self._check_assertion(app, tenant, form["client_assertion"])

    def _check_assertion(self, app: RegisteredApp, tenant: str, assertion: str) -> Reply | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        key = app.certificates.get(str(header.get("x5t", "")).rstrip("="))
        if key is None:
            return self._error(
                401,
                "invalid_client",
                700027,
                f"Client assertion failed signature validation. Key was not found for app '{app.client_id}'.",
            )
        audience = f"{self.server.url}/{tenant}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256", "PS256"],
                audience=audience,
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"], "verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError:
            return self._error(401, "invalid_client", 700027, "Client assertion contains an invalid signature.")
        except jwt.PyJWTError as error:
            return self._error(401, "invalid_client", 700027, f"Client assertion is invalid: {error}.")
        now = self.now()
        if claims["sub"] != app.client_id:
            return self._error(401, "invalid_client", 700021, "Client assertion application identifier mismatch.")
        if not (claims.get("nbf", 0) - 300 <= now < claims["exp"] + 300):
            return self._error(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range. Current time: "
                f"{datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat()}.",
            )
        return None

    def _tenant_problem(self, tenant: str) -> Reply | None:
        if not TENANT_FORMAT.fullmatch(tenant):
            return self._error(
                400,
                "invalid_request",
                900023,
                f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
            )
        if tenant.lower() not in self.tenants:
            return self._error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
                "into the correct cloud.",
            )
        return None

    def _error(self, status: int, error: str, code: int, description: str) -> Reply:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = datetime.datetime.fromtimestamp(self.now(), datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return Reply.json(
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: "
                f"{correlation_id} Timestamp: {timestamp}",
                "error_codes": [code],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"{self.server.url}/error?code={code}",
            },
            status,
        )

    def _inner(self) -> dict[str, str]:
        return {
            "date": datetime.datetime.fromtimestamp(self.now(), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4()),
        }
