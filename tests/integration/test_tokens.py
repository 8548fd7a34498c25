"""TokenProvider: the real MSAL against the fake identity platform over HTTPS."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from forwarder.net.http_client import HttpClient, HttpSettings
from forwarder.net.tokens import CLOUDS, ClientCredential, CredentialError, TokenProvider
from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform

TENANT = "0b2d7f1e-5c4a-4e8b-9f3d-2a6c1e8b7d40"
CLIENT = "4f8e2a1c-9b3d-4c7e-8a5f-6d1b0e9c2a73"
SECRET = "s3cr3t~Value.Never-Logged_8Q"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def server() -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer() as fake:
        yield fake
    assert fake.handler_errors == []


@pytest.fixture
def identity(server: FakeHttpsServer) -> FakeIdentityPlatform:
    platform = FakeIdentityPlatform(server)
    platform.register_app(TENANT, CLIENT, secret=SECRET)
    return platform


@pytest.fixture
def app_certificate() -> trustme.LeafCert:
    return trustme.CA().issue_cert("forwarder-app.example", key_type=trustme.KeyType.RSA)


def provider_for(
    identity: FakeIdentityPlatform,
    credential: ClientCredential | None = None,
    tenant: str = TENANT,
    client: str = CLIENT,
    scope: str = GRAPH_SCOPE,
) -> TokenProvider:
    return TokenProvider(
        identity.authority_host,
        tenant,
        client,
        credential or ClientCredential.from_secret(SECRET),
        scope,
        ca_bundle=identity.server.ca_path,
    )


def test_secret_token_is_cached_across_calls(identity: FakeIdentityPlatform) -> None:
    provider = provider_for(identity)
    tokens = {provider.token() for _ in range(20)}
    assert len(tokens) == 1
    assert identity.token_requests == 1
    assert provider.token_requests == 1
    form = identity.server.requests_to(rf"/{TENANT}/oauth2/v2.0/token")[0].form()
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == GRAPH_SCOPE


def test_providers_of_one_app_share_msal_and_its_cache(identity: FakeIdentityPlatform) -> None:
    graph = provider_for(identity)
    graph_again = provider_for(identity)
    office = provider_for(identity, scope="https://manage.office.com/.default")
    assert graph.token() == graph_again.token()
    assert office.token() != graph.token()
    assert identity.token_requests == 2
    assert len(identity.server.requests_to(rf"/{TENANT}/v2.0/.well-known/openid-configuration")) == 1


def test_certificate_credential_obtains_a_token(
    identity: FakeIdentityPlatform, app_certificate: trustme.LeafCert
) -> None:
    certificate_pem = app_certificate.cert_chain_pems[0].bytes().decode()
    identity.register_app(TENANT, CLIENT, certificate_pem=certificate_pem)
    credential = ClientCredential.from_certificate(certificate_pem, app_certificate.private_key_pem.bytes().decode())
    provider = provider_for(identity, credential)
    token = provider.token()
    assert identity.authorize(bearer_request(token)) is None
    form = identity.server.requests_to(rf"/{TENANT}/oauth2/v2.0/token")[0].form()
    assert "client_secret" not in form and form["client_assertion"]


def test_encrypted_private_key_with_passphrase(
    identity: FakeIdentityPlatform, app_certificate: trustme.LeafCert
) -> None:
    certificate_pem = app_certificate.cert_chain_pems[0].bytes().decode()
    identity.register_app(TENANT, CLIENT, certificate_pem=certificate_pem)
    key = serialization.load_pem_private_key(app_certificate.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key-pass-9"),
    ).decode()
    credential = ClientCredential.from_certificate(certificate_pem, encrypted, "key-pass-9")
    assert provider_for(identity, credential).token()
    assert "key-pass-9" not in repr(credential)
    with pytest.raises(CredentialError, match="wrong passphrase"):
        ClientCredential.from_certificate(certificate_pem, encrypted, "wrong")
    with pytest.raises(CredentialError, match="encrypted"):
        ClientCredential.from_certificate(certificate_pem, encrypted)


def test_certificate_credential_checks(app_certificate: trustme.LeafCert) -> None:
    certificate_pem = app_certificate.cert_chain_pems[0].bytes().decode()
    key_pem = app_certificate.private_key_pem.bytes().decode()
    credential = ClientCredential.from_certificate(certificate_pem, key_pem)
    der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(serialization.Encoding.DER)
    assert credential.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert credential.for_msal() == {"private_key": key_pem, "thumbprint": credential.thumbprint}
    assert credential.certificate_expires is not None
    other_key = trustme.CA().issue_cert("other.example", key_type=trustme.KeyType.RSA).private_key_pem.bytes().decode()
    with pytest.raises(CredentialError, match="does not belong"):
        ClientCredential.from_certificate(certificate_pem, other_key)
    ec_certificate = trustme.CA().issue_cert("ec.example")
    with pytest.raises(CredentialError, match="not an RSA key"):
        ClientCredential.from_certificate(
            ec_certificate.cert_chain_pems[0].bytes().decode(), ec_certificate.private_key_pem.bytes().decode()
        )
    with pytest.raises(CredentialError, match=r"not a PEM X\.509"):
        ClientCredential.from_certificate("garbage", key_pem)
    with pytest.raises(CredentialError, match="empty"):
        ClientCredential.from_secret("")


def test_token_past_its_lifetime_is_renewed(server: FakeHttpsServer) -> None:
    identity = FakeIdentityPlatform(server, token_lifetime=301)
    identity.register_app(TENANT, CLIENT, secret=SECRET)
    provider = provider_for(identity)
    first = provider.token()
    deadline = time.monotonic() + 10.0
    renewed = first
    while renewed == first and time.monotonic() < deadline:
        time.sleep(0.1)
        renewed = provider.token()
    assert renewed != first
    assert identity.token_requests == 2


def bearer_request(token: str) -> Request:
    return Request("GET", "/", {}, {"authorization": f"Bearer {token}"}, b"")


@pytest.mark.parametrize("invalidate", ["revoke", "expire"])
def test_resource_401_leads_to_one_refresh_and_a_retry(identity: FakeIdentityPlatform, invalidate: str) -> None:
    def sign_ins(request, match) -> Reply:
        return identity.authorize(request, "https://graph.microsoft.com") or Reply.json({"value": [{"id": "a"}]})

    identity.server.route("GET", r"/v1.0/auditLogs/signIns", sign_ins)
    provider = provider_for(identity)
    client = HttpClient(HttpSettings(ca_bundle=identity.server.ca_path), token_provider=provider)
    url = f"{identity.server.url}/v1.0/auditLogs/signIns"
    assert client.get_json(url)["value"] == [{"id": "a"}]
    if invalidate == "revoke":
        identity.revoke_all()
    else:
        identity.advance(3600)
    assert client.get_json(url)["value"] == [{"id": "a"}]
    assert identity.token_requests == 2
    assert len(identity.server.requests_to(r"/v1.0/auditLogs/signIns")) == 3


def test_transient_token_endpoint_failure_is_retried_by_the_http_client(identity: FakeIdentityPlatform) -> None:
    identity.server.route("GET", r"/v1.0/ping", lambda request, match: identity.authorize(request) or Reply.json({}))
    aad_busy = {"error": "temporarily_unavailable", "error_description": "AADSTS50196: busy", "error_codes": [50196]}
    identity.server.fail_next(rf"/{TENANT}/oauth2/v2.0/token", 1, 503, {"Retry-After": "1"}, aad_busy)
    settings = HttpSettings(ca_bundle=identity.server.ca_path, backoff_initial=1.0)
    client = HttpClient(settings, token_provider=provider_for(identity), jitter=lambda: 1.0)
    assert client.get_json(f"{identity.server.url}/v1.0/ping") == {}
    assert client.stats.retries == 1
    assert len(identity.server.requests_to(rf"/{TENANT}/oauth2/v2.0/token")) == 2


def expect_credential_error(provider: TokenProvider) -> CredentialError:
    with pytest.raises(CredentialError) as raised:
        provider.token()
    return raised.value


@pytest.mark.parametrize(
    ("scenario", "code", "phrase"),
    [
        ("expired_secret", "AADSTS7000222", "client secret of app"),
        ("wrong_secret", "AADSTS7000215", "invalid client secret"),
        ("unknown_app", "AADSTS700016", "was not found in tenant"),
        ("unknown_tenant", "AADSTS90002", "tenant 9d3c1b2a-0000-4000-8000-000000000000 was not found"),
        ("malformed_tenant", "AADSTS900023", "not a valid tenant id"),
        ("disabled_app", "AADSTS7000112", "is disabled"),
        ("bad_scope", "AADSTS1002012", "is not valid"),
    ],
)
def test_token_errors_name_their_cause_without_the_secret(
    identity: FakeIdentityPlatform, caplog: pytest.LogCaptureFixture, scenario: str, code: str, phrase: str
) -> None:
    caplog.set_level(logging.DEBUG)
    credential = ClientCredential.from_secret(SECRET)
    tenant, client, scope = TENANT, CLIENT, GRAPH_SCOPE
    if scenario == "expired_secret":
        identity.expire_secret(TENANT, CLIENT, SECRET)
    elif scenario == "wrong_secret":
        identity.register_app(TENANT, "e0000000-0000-4000-8000-00000000000e", secret="the-real-one")
        client = "e0000000-0000-4000-8000-00000000000e"
    elif scenario == "unknown_app":
        client = "a0000000-0000-4000-8000-00000000000a"
    elif scenario == "unknown_tenant":
        tenant = "9d3c1b2a-0000-4000-8000-000000000000"
    elif scenario == "malformed_tenant":
        tenant = "not_a_tenant"
    elif scenario == "disabled_app":
        identity.tenants[TENANT][CLIENT].disabled = True
    else:
        scope = "https://graph.microsoft.com/AuditLog.Read.All"
    error = expect_credential_error(provider_for(identity, credential, tenant, client, scope))
    assert error.code == code
    assert error.permanent
    assert phrase in error.message and code in error.message
    assert "\n" not in error.message
    for text in (error.message, str(error), repr(credential), caplog.text):
        assert SECRET not in text


@pytest.mark.parametrize(("scenario", "code"), [("unregistered", "AADSTS700027"), ("clock_skew", "AADSTS700024")])
def test_certificate_assertion_errors(
    identity: FakeIdentityPlatform, app_certificate: trustme.LeafCert, scenario: str, code: str
) -> None:
    certificate_pem = app_certificate.cert_chain_pems[0].bytes().decode()
    if scenario == "clock_skew":
        identity.register_app(TENANT, CLIENT, certificate_pem=certificate_pem)
        identity.advance(3600)
    credential = ClientCredential.from_certificate(certificate_pem, app_certificate.private_key_pem.bytes().decode())
    error = expect_credential_error(provider_for(identity, credential))
    assert (error.code, error.permanent) == (code, True)
    assert "certificate assertion" in error.message


def test_token_endpoint_5xx_is_transient(identity: FakeIdentityPlatform) -> None:
    identity.server.fail_next(rf"/{TENANT}/oauth2/v2.0/token", 1, status=500, body={"error": "server_error"})
    error = expect_credential_error(provider_for(identity))
    assert error.permanent is False


def test_unreachable_login_endpoint_is_transient(server: FakeHttpsServer) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    credential = ClientCredential.from_secret(SECRET)
    provider = TokenProvider(f"https://127.0.0.1:{port}", TENANT, CLIENT, credential, GRAPH_SCOPE)
    error = expect_credential_error(provider)
    assert error.permanent is False
    assert "cannot reach" in error.message


def test_configured_ca_wins_over_requests_ca_bundle(
    identity: FakeIdentityPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(wrong))
    assert provider_for(identity).token()


def test_untrusted_login_endpoint_says_tls(identity: FakeIdentityPlatform) -> None:
    provider = TokenProvider(identity.authority_host, TENANT, CLIENT, ClientCredential.from_secret(SECRET), GRAPH_SCOPE)
    error = expect_credential_error(provider)
    assert "TLS" in error.message and "certificate_authorities" in error.message


def test_plain_http_authority_is_refused() -> None:
    with pytest.raises(CredentialError, match="must be https"):
        TokenProvider("http://login.example", TENANT, CLIENT, ClientCredential.from_secret(SECRET), GRAPH_SCOPE)


def test_national_cloud_table() -> None:
    assert CLOUDS["global"] == ("login.microsoftonline.com", "graph.microsoft.com")
    assert CLOUDS["usgov"].graph_host == "graph.microsoft.us"
    assert CLOUDS["usgov-dod"] == ("login.microsoftonline.us", "dod-graph.microsoft.us")
    assert CLOUDS["china"].login_host == "login.chinacloudapi.cn"
