"""GraphClient with the real MSAL TokenProvider and HttpClient against the fake identity platform and Graph."""

from __future__ import annotations

import calendar
import threading
from collections.abc import Iterator

import pytest
import trustme

from forwarder.modules.entraid_ecs import RECORD_TYPES, record_time
from forwarder.net.graph_client import ENDPOINTS, GraphClient, GraphPermanentError, graph_time
from forwarder.net.http_client import HttpClient, HttpSettings, PermanentHttpError
from forwarder.net.tokens import ClientCredential, TokenProvider
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer, Reply
from tests.fakes.identity_platform import FakeIdentityPlatform

TENANT = "6a1c3e5f-2b4d-4f60-8a9c-1e3b5d7f9a20"
CLIENT = "9e7c5a3b-1d2f-4e6a-8c0b-2f4d6a8c0e13"
SECRET = "graph~Client.Secret-Never_Logged"
T0 = calendar.timegm((2026, 11, 1, 0, 0, 0))
TIME_FIELDS = {
    "auditLogs/signIns": "createdDateTime",
    "auditLogs/directoryAudits": "activityDateTime",
    "auditLogs/provisioning": "activityDateTime",
    "identityProtection/riskDetections": "lastUpdatedDateTime",
    "identityProtection/riskyUsers": "riskLastUpdatedDateTime",
    "security/alerts_v2": "lastUpdateDateTime",
    "security/incidents": "lastUpdateDateTime",
}


class RecordedWaits:
    """HttpClient's sleeper: notes each wait instead of sleeping, so throttling tests run in milliseconds."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, stop: threading.Event, seconds: float) -> None:
        self.waits.append(seconds)


def iso(offset: float, digits: str = "1234567") -> str:
    """T0 + offset whole seconds as Graph writes record times (7 fractional digits)."""
    return graph_time(T0 + offset)[:19] + f".{digits}Z"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer(ca) as fake:
        yield fake
    assert fake.handler_errors == []


@pytest.fixture
def identity(server: FakeHttpsServer) -> FakeIdentityPlatform:
    platform = FakeIdentityPlatform(server)
    platform.register_app(TENANT, CLIENT, secret=SECRET)
    return platform


@pytest.fixture
def graph(server: FakeHttpsServer, identity: FakeIdentityPlatform) -> FakeGraphApi:
    return FakeGraphApi(server, identity)


@pytest.fixture
def waits() -> RecordedWaits:
    return RecordedWaits()


@pytest.fixture
def tokens(identity: FakeIdentityPlatform) -> TokenProvider:
    credential = ClientCredential.from_secret(SECRET)
    return TokenProvider(
        identity.authority_host, TENANT, CLIENT, credential, "https://graph.microsoft.com/.default",
        ca_bundle=identity.server.ca_path,
    )


@pytest.fixture
def client(server: FakeHttpsServer, tokens: TokenProvider, waits: RecordedWaits) -> Iterator[GraphClient]:
    # A bounded number of attempts turns a client bug (e.g. following a foreign link) into a failure, not a hang.
    settings = HttpSettings(ca_bundle=server.ca_path, connect_timeout=2.0, max_attempts=10)
    http = HttpClient(settings, token_provider=tokens, sleep=waits)
    yield GraphClient(http, server.url)
    http.close()


def add_sign_ins(graph: FakeGraphApi, count: int, kind: str = "interactiveUser", first: int = 0) -> list[str]:
    ids = []
    for n in range(first, first + count):
        record_id = f"{kind}-{n:04d}"
        graph.add("auditLogs/signIns", {"id": record_id, "createdDateTime": iso(n), "signInEventTypes": [kind]})
        ids.append(record_id)
    return ids


def read_all(client: GraphClient, record_type: str, start: float, end: float, **options: object) -> list[list[dict]]:
    return list(client.pages(record_type, start, end, **options))  # type: ignore[arg-type]


def test_pages_through_every_page_newest_first(client: GraphClient, graph: FakeGraphApi) -> None:
    ids = add_sign_ins(graph, 25)
    pages = read_all(client, "signinlogs", T0, T0 + 3600, page_size=7)
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [record["id"] for page in pages for record in page] == list(reversed(ids))
    queries = graph.requests_to("auditLogs/signIns")
    assert queries[0] == {
        "$filter": "createdDateTime ge 2026-11-01T00:00:00.000Z and createdDateTime le 2026-11-01T01:00:00.000Z",
        "$top": "7",
    }
    assert all(set(query) == {"$top", "$skiptoken"} for query in queries[1:])
    assert len({query["$skiptoken"] for query in queries[1:]}) == 3
    assert [path for path, _ in graph.request_log] == ["/v1.0/auditLogs/signIns"] * 4


def test_only_records_inside_the_window_are_returned(client: GraphClient, graph: FakeGraphApi) -> None:
    for second, digits in [(9, "9999999"), (10, "0000000"), (15, "5000000"), (20, "0000000"), (20, "0010000")]:
        graph.add("auditLogs/directoryAudits", {"id": f"{second}.{digits}", "activityDateTime": iso(second, digits)})
    pages = read_all(client, "auditlogs", T0 + 10, T0 + 20)
    assert [record["id"] for page in pages for record in page] == ["20.0000000", "15.5000000", "10.0000000"]
    assert graph.requests_to("auditLogs/directoryAudits")[0]["$top"] == "999"


def test_page_size_is_capped_at_the_endpoint_maximum(client: GraphClient, graph: FakeGraphApi) -> None:
    graph.add("identityProtection/riskDetections", {"id": "r1", "lastUpdatedDateTime": iso(5)})
    assert read_all(client, "risk_detection", T0, T0 + 60, page_size=5000) == [
        [{"id": "r1", "lastUpdatedDateTime": iso(5)}]
    ]
    assert graph.requests_to("identityProtection/riskDetections")[0]["$top"] == "500"


def test_non_interactive_sign_ins_use_beta_with_the_event_type_filter(
    client: GraphClient, graph: FakeGraphApi, server: FakeHttpsServer
) -> None:
    add_sign_ins(graph, 3)
    non_interactive = add_sign_ins(graph, 3, "nonInteractiveUser", first=10)
    service = add_sign_ins(graph, 2, "servicePrincipal", first=20)
    pages = read_all(client, "signinlogs", T0, T0 + 60, sign_in_types=["nonInteractiveUser"])
    assert [r["id"] for page in pages for r in page] == list(reversed(non_interactive))
    path, query = graph.request_log[-1]
    assert path == "/beta/auditLogs/signIns"
    assert query["$filter"].endswith(" and signInEventTypes/any(t: t eq 'nonInteractiveUser')")
    pages = read_all(client, "signinlogs", T0, T0 + 60, sign_in_types=["servicePrincipal", "nonInteractiveUser"])
    assert [r["id"] for page in pages for r in page] == list(reversed(non_interactive + service))
    interactive = read_all(client, "signinlogs", T0, T0 + 60, sign_in_types=["interactiveUser"])
    assert [r["id"] for r in interactive[0]] == ["interactiveUser-0002", "interactiveUser-0001", "interactiveUser-0000"]
    assert graph.request_log[-1][0] == "/v1.0/auditLogs/signIns"

    with pytest.raises(PermanentHttpError) as raised:
        client.http.get_json(f"{server.url}/v1.0/auditLogs/signIns", params=query)
    assert (raised.value.status, raised.value.code) == (400, "invalidRequest")


def test_unknown_sign_in_type_is_refused_before_any_request(client: GraphClient, graph: FakeGraphApi) -> None:
    with pytest.raises(GraphPermanentError) as raised:
        read_all(client, "signinlogs", T0, T0 + 60, sign_in_types=["nonInteractive"])
    assert raised.value.code == "invalidSignInType"
    assert "'nonInteractive'" in str(raised.value) and "nonInteractiveUser" in str(raised.value)
    assert graph.request_log == []


def test_429_storm_is_waited_out_with_nothing_missing(
    client: GraphClient, graph: FakeGraphApi, waits: RecordedWaits
) -> None:
    ids = add_sign_ins(graph, 30)
    graph.fail("auditLogs/signIns", 429, count=4, after=1, retry_after="1")
    graph.fail("auditLogs/signIns", 503, count=1, after=1, retry_after="2")
    pages = read_all(client, "signinlogs", T0, T0 + 60, page_size=10)
    assert sorted(r["id"] for page in pages for r in page) == ids
    assert [len(page) for page in pages] == [10, 10, 10]
    assert waits.waits == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert client.http.stats.throttled == 5
    assert len(graph.requests_to("auditLogs/signIns")) == 3 + 5


def test_token_expiring_mid_paging_is_renewed_once(
    client: GraphClient, graph: FakeGraphApi, identity: FakeIdentityPlatform, tokens: TokenProvider
) -> None:
    ids = add_sign_ins(graph, 12)
    pager = client.pages("signinlogs", T0, T0 + 60, page_size=5)
    seen = [r["id"] for r in next(pager)]
    identity.advance(identity.token_lifetime + 1)
    seen += [r["id"] for page in pager for r in page]
    assert sorted(seen) == ids and len(seen) == 12
    assert tokens.token_requests == 2
    assert identity.token_requests == 2

    pager = client.pages("signinlogs", T0, T0 + 60, page_size=5)
    seen = [r["id"] for r in next(pager)]
    identity.revoke_all()
    seen += [r["id"] for page in pager for r in page]
    assert sorted(seen) == ids
    assert tokens.token_requests == 3


def test_late_record_is_returned_by_an_overlapping_read(client: GraphClient, graph: FakeGraphApi) -> None:
    add_sign_ins(graph, 5, first=100)
    first = [r["id"] for page in read_all(client, "signinlogs", T0, T0 + 200) for r in page]
    late = {"id": "late-one", "createdDateTime": iso(150), "signInEventTypes": ["interactiveUser"]}
    graph.add("auditLogs/signIns", late)
    second = [r["id"] for page in read_all(client, "signinlogs", T0 + 120, T0 + 300) for r in page]
    assert "late-one" not in first
    assert second == ["late-one"]
    overlap = [r["id"] for page in read_all(client, "signinlogs", T0 + 50, T0 + 300) for r in page]
    assert overlap == ["late-one", *reversed([f"interactiveUser-{n:04d}" for n in range(100, 105)])]


def test_non_premium_tenant_gets_the_licence_message(client: GraphClient, graph: FakeGraphApi) -> None:
    graph.make_non_premium(TENANT)
    with pytest.raises(GraphPermanentError) as raised:
        read_all(client, "signinlogs", T0, T0 + 60)
    assert raised.value.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert "needs a Microsoft Entra ID P1 or P2 licence" in raised.value.message
    assert "\n" not in raised.value.message
    assert read_all(client, "auditlogs", T0, T0 + 60) == [[]]


@pytest.mark.parametrize(
    ("record_type", "permission"),
    [
        ("auditlogs", "AuditLog.Read.All"),
        ("risk_detection", "IdentityRiskEvent.Read.All"),
        ("risky_user", "IdentityRiskyUser.Read.All"),
        ("alert", "SecurityAlert.Read.All"),
        ("incident", "SecurityIncident.Read.All"),
    ],
)
def test_missing_permission_names_the_permission(
    client: GraphClient, graph: FakeGraphApi, record_type: str, permission: str
) -> None:
    graph.deny(ENDPOINTS[record_type].path)
    with pytest.raises(GraphPermanentError) as raised:
        read_all(client, record_type, T0, T0 + 60)
    assert f"lacks the application permission {permission}" in raised.value.message
    assert "admin consent" in raised.value.message
    assert raised.value.code in ("accessDenied", "Authorization_RequestDenied")
    assert len(graph.request_log) == 1


def test_next_link_to_another_host_is_refused(
    client: GraphClient, server: FakeHttpsServer, identity: FakeIdentityPlatform
) -> None:
    links = {
        "/v1.0/security/alerts_v2": "https://attacker.example/v1.0/security/alerts_v2?$skiptoken=x",
        "/v1.0/security/incidents": f"http://127.0.0.1:{server.port}/v1.0/security/incidents?$skiptoken=x",
    }

    def page(request, match) -> Reply:
        return identity.authorize(request) or Reply.json(
            {"value": [{"id": "a1"}], "@odata.nextLink": links[request.path]}
        )

    server.route("GET", r"/v1\.0/security/(alerts_v2|incidents)", page)
    for record_type in ("alert", "incident"):
        pager = client.pages(record_type, T0, T0 + 60)
        assert next(pager) == [{"id": "a1"}]
        with pytest.raises(GraphPermanentError) as raised:
            next(pager)
        assert raised.value.code == "foreignNextLink"
        assert "$skiptoken" not in raised.value.message
    assert [request.path for request in server.requests if "/v1.0/" in request.path] == list(links)


def test_every_endpoint_returns_its_records(client: GraphClient, graph: FakeGraphApi) -> None:
    assert set(ENDPOINTS) == set(RECORD_TYPES)
    for record_type, endpoint in ENDPOINTS.items():
        time_field = TIME_FIELDS[endpoint.path]
        assert endpoint.time_field == time_field
        graph.add(endpoint.path, {"id": f"{record_type}-old", time_field: iso(-10)})
        graph.add(endpoint.path, {"id": f"{record_type}-1", time_field: iso(1)})
        graph.add(endpoint.path, {"id": f"{record_type}-2", time_field: iso(2)})
    for record_type, endpoint in ENDPOINTS.items():
        records = [r for page in read_all(client, record_type, T0, T0 + 60) for r in page]
        assert [r["id"] for r in records] == [f"{record_type}-2", f"{record_type}-1"]
        assert all(T0 <= (record_time(r, record_type) or 0) <= T0 + 60 for r in records)
        assert graph.request_log[-1][0] == f"/v1.0/{endpoint.path}"
