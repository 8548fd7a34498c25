"""ManagementClient against the fake Management Activity API, with real MSAL tokens from the fake identity platform."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import trustme

from forwarder.net.http_client import HttpClient, HttpSettings
from forwarder.net.management_client import (
    ContentBlob,
    ErrorKind,
    ManagementApiError,
    ManagementClient,
    classify,
    list_time,
)
from forwarder.net.tokens import ClientCredential, TokenProvider
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.management_api import PATHS, FakeManagementApi, audit_record

TENANT = "6c1e2f3a-4b5d-4e6f-9a0b-1c2d3e4f5a6b"
OTHER_TENANT = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
APP = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "mgmt~Client.Secret-Never_Logged"
AAD = "Audit.AzureActiveDirectory"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer(ca) as fake:
        yield fake
    assert fake.handler_errors == []


@pytest.fixture
def api(server: FakeHttpsServer) -> FakeManagementApi:
    identity = FakeIdentityPlatform(server)
    identity.register_app(TENANT, APP, secret=SECRET)
    identity.register_app(OTHER_TENANT, APP, secret=SECRET)
    fake = FakeManagementApi(server, identity, page_size=2)
    fake.add_tenant(TENANT, subscribed=(AAD,))
    return fake


def management_client(server: FakeHttpsServer, tenant: str = TENANT, url_tenant: str | None = None,
                      max_attempts: int | None = 8) -> ManagementClient:
    tokens = TokenProvider(server.url, tenant, APP, ClientCredential.from_secret(SECRET), f"{server.url}/.default",
                           ca_bundle=server.ca_path)
    settings = HttpSettings(ca_bundle=server.ca_path, backoff_initial=0.01, backoff_max=0.05,
                            max_attempts=max_attempts)
    http = HttpClient(settings, token_provider=tokens, stop=threading.Event())
    return ManagementClient(http, server.url, url_tenant or tenant, APP)


def listed(client: ManagementClient, start: float, end: float) -> list[list[ContentBlob]]:
    return list(client.content_pages(AAD, start, end))


def test_subscriptions_are_listed_and_started_and_already_enabled_counts_as_started(
    server: FakeHttpsServer, api: FakeManagementApi
) -> None:
    client = management_client(server)
    assert client.subscriptions() == {AAD: "enabled"}
    assert client.start_subscription("Audit.Exchange") == "enabled"
    assert client.start_subscription("Audit.Exchange") == "enabled"  # AF20024 the second time
    assert client.subscriptions() == {AAD: "enabled", "Audit.Exchange": "enabled"}
    assert api.tenants[TENANT].starts == 1
    assert api.publishers and set(api.publishers) == {TENANT}


def test_listing_follows_next_page_uri_and_keeps_the_window_half_open(
    server: FakeHttpsServer, api: FakeManagementApi
) -> None:
    now = api.now()
    start, end = now - 7200, now - 600
    inside = [api.add_blob(TENANT, AAD, [audit_record(now)], created=start + i * 100) for i in range(5)]
    api.add_blob(TENANT, AAD, [], created=end)  # contentCreated == endTime: belongs to the next window
    api.add_blob(TENANT, AAD, [], created=start - 1)
    api.add_blob(TENANT, "Audit.Exchange", [], created=start + 10)
    client = management_client(server)

    pages = listed(client, start, end)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [blob.content_id for page in pages for blob in page] == [b.content_id for b in inside]
    assert all(blob.content_type == AAD and blob.expiration for page in pages for blob in page)
    assert pages[0][0].created == pytest.approx(inside[0].created, abs=0.001)
    requests = api.requests("list")
    assert [r.param("nextPage") for r in requests] == [None, "page2", "page4"]
    assert all(r.param("PublisherIdentifier") == TENANT for r in requests)
    assert {(r.param("startTime"), r.param("endTime")) for r in requests} == {(list_time(start), list_time(end))}


def test_a_blob_is_fetched_with_the_publisher_identifier(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    records = [audit_record(api.now(), record_id=f"r{i}") for i in range(3)]
    api.add_blob(TENANT, AAD, records, age=60)
    client = management_client(server)
    (blob,), = listed(client, api.now() - 3600, api.now())
    assert client.fetch(blob) == records
    assert api.requests("blob")[0].param("PublisherIdentifier") == TENANT


@pytest.mark.parametrize(("start_offset", "length"), [(-8 * 86400, 3600), (-2 * 86400, 25 * 3600), (-600, -60)])
def test_an_invalid_window_is_a_window_error(
    server: FakeHttpsServer, api: FakeManagementApi, start_offset: float, length: float
) -> None:
    start = api.now() + start_offset
    with pytest.raises(ManagementApiError) as raised:
        listed(management_client(server), start, start + length)
    assert (raised.value.kind, raised.value.code) == (ErrorKind.BAD_WINDOW, "AF20055")


def test_missing_and_disabled_subscriptions_ask_for_a_start(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    client = management_client(server)
    with pytest.raises(ManagementApiError) as missing:
        list(client.content_pages("DLP.All", api.now() - 60, api.now()))
    api.tenants[TENANT].subscriptions[AAD] = "disabled"
    with pytest.raises(ManagementApiError) as disabled:
        listed(client, api.now() - 60, api.now())
    assert (missing.value.kind, missing.value.code) == (ErrorKind.NO_SUBSCRIPTION, "AF20022")
    assert (disabled.value.kind, disabled.value.code) == (ErrorKind.NO_SUBSCRIPTION, "AF20023")


def test_expired_and_missing_content_is_gone(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    api.add_blob(TENANT, AAD, [audit_record(api.now())], age=300, expired=True)
    api.add_blob(TENANT, AAD, [audit_record(api.now())], age=200, missing=True)
    client = management_client(server)
    (expired, missing), = listed(client, api.now() - 3600, api.now())
    with pytest.raises(ManagementApiError) as gone:
        client.fetch(expired)
    with pytest.raises(ManagementApiError) as absent:
        client.fetch(missing)
    assert (gone.value.kind, gone.value.code) == (ErrorKind.CONTENT_GONE, "AF20051")
    assert (absent.value.kind, absent.value.code, absent.value.status) == (ErrorKind.CONTENT_GONE, "AF20050", 404)
    assert expired.content_id in gone.value.message


def test_throttling_and_server_errors_are_retried(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    api.add_blob(TENANT, AAD, [audit_record(api.now(), record_id="kept")], age=60)
    client = management_client(server)
    api.throttle("list", 2)
    api.throttle("blob", 2, af429=True, retry_after=None)
    api.fail("blob", 1, 500, "AF50000", "An internal error occurred.")
    (blob,), = listed(client, api.now() - 3600, api.now())
    assert client.fetch(blob)[0]["Id"] == "kept"
    assert client.http.stats.throttled == 4
    assert client.http.stats.retries == 5


@pytest.mark.parametrize("code", ["AF10001", "AF20011"])
def test_permission_and_tenant_errors_concern_the_whole_tenant(
    server: FakeHttpsServer, api: FakeManagementApi, code: str
) -> None:
    if code == "AF10001":
        api.tenants[TENANT].permission = False
        client = management_client(server)
    else:
        client = management_client(server, tenant=OTHER_TENANT)
    with pytest.raises(ManagementApiError) as raised:
        client.subscriptions()
    error = raised.value
    assert (error.kind, error.code, error.tenant_wide) == (ErrorKind.PERMANENT, code, True)
    if code == "AF10001":
        assert "ActivityFeed.Read" in error.message and "admin consent" in error.message
    else:
        assert OTHER_TENANT in error.message and "tenant_id" in error.message


def test_a_url_tenant_other_than_the_token_tenant_is_af20010(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    api.add_tenant(OTHER_TENANT)
    client = management_client(server, tenant=OTHER_TENANT, url_tenant=TENANT)
    with pytest.raises(ManagementApiError) as raised:
        client.subscriptions()
    assert (raised.value.code, raised.value.tenant_wide) == ("AF20010", True)


def test_an_invalid_content_type_concerns_only_that_content_type(
    server: FakeHttpsServer, api: FakeManagementApi
) -> None:
    with pytest.raises(ManagementApiError) as raised:
        management_client(server).start_subscription("Audit.Nothing")
    assert (raised.value.kind, raised.value.code, raised.value.tenant_wide) == (ErrorKind.PERMANENT, "AF20020", False)


def test_a_next_page_on_another_host_is_not_followed(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    for age in (30, 20, 10):
        api.add_blob(TENANT, AAD, [], age=age)
    foreign = "https://attacker.example/api/v1.0/x/activity/feed/subscriptions/content?nextPage=page2"
    server.fail_next(PATHS["list"], 1, 200, {"NextPageUri": foreign}, body=[])
    client = management_client(server)
    pages = client.content_pages(AAD, api.now() - 3600, api.now())
    with pytest.raises(ManagementApiError) as raised:
        list(pages)
    assert raised.value.code == "foreignUrl" and "attacker.example" in raised.value.message
    assert len(server.requests_to(r".*attacker.*")) == 0


def test_the_server_clock_skew_is_read_from_its_date_header(server: FakeHttpsServer, api: FakeManagementApi) -> None:
    api.clock_offset = 2 * 3600.0
    client = management_client(server)
    assert client.server_clock_skew() is None
    client.subscriptions()
    assert client.server_clock_skew(time.time()) == pytest.approx(7200, abs=2)


def test_error_classification_table() -> None:
    assert classify(400, "AF20031") == (ErrorKind.TRANSIENT, False)
    assert classify(404, "") == (ErrorKind.PERMANENT, False)
    assert classify(404, "", blob=True) == (ErrorKind.CONTENT_GONE, False)
    assert classify(401, "") == (ErrorKind.TRANSIENT, False)
    assert classify(403, "AF429") == (ErrorKind.THROTTLED, False)
    assert classify(0, "tls") == (ErrorKind.PERMANENT, True)
    assert classify(400, "AF20001") == (ErrorKind.PERMANENT, False)
