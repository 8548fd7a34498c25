"""The fake Duo Admin API checked against Duo's own client library: it accepts what duo_client signs, and only that."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
from datetime import UTC, datetime

import duo_client
import pytest
import requests
import trustme

from tests.fakes.duo_admin_api import FakeDuoAdminApi
from tests.fakes.https_server import FakeHttpsServer

IKEY = "DIWJ8X6AEYOR5OMC6TQ1"
SKEY = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"


@pytest.fixture
def duo():
    with FakeHttpsServer(trustme.CA()) as server:
        yield FakeDuoAdminApi(server, IKEY, SKEY)


def admin(api: FakeDuoAdminApi, skey: str = SKEY, ikey: str = IKEY) -> duo_client.Admin:
    """duo_client as its users call it: the bare host name (it signs that) and the port apart."""
    return duo_client.Admin(ikey, skey, "localhost", port=api.server.port, ca_certs=api.server.ca_path)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def auth_record(number: int, epoch: float) -> dict:
    return {"txid": f"tx-{number:04d}", "isotimestamp": iso(epoch), "timestamp": int(epoch), "result": "success"}


def signed_get(api: FakeDuoAdminApi, path: str, query: str, canonical_params: str, date: str | None = None,
               skey: str = SKEY, sent_date: str | None = None) -> requests.Response:
    """A GET whose v2 signature covers `canonical_params` while the wire carries `query`."""
    date = date or email.utils.formatdate()
    host = f"127.0.0.1:{api.server.port}"
    canonical = "\n".join([date, "GET", host, path, canonical_params])
    signature = hmac.new(skey.encode(), canonical.encode(), hashlib.sha512).hexdigest()
    token = base64.b64encode(f"{IKEY}:{signature}".encode()).decode()
    headers = {"Date": sent_date or date, "Authorization": f"Basic {token}"}
    return requests.get(f"{api.server.url}{path}?{query}", headers=headers, verify=api.server.ca_path, timeout=10)


def test_duo_client_reads_auth_logs_page_by_page_and_the_last_two_minutes_are_withheld(duo):
    now = time.time()
    for number in range(250):
        duo.add("auth", auth_record(number, now - 3600 + number))
    duo.add("auth", auth_record(999, now - 30))  # inside Duo's two-minute delay
    client = admin(duo)
    mintime, maxtime = int((now - 7200) * 1000), int(now * 1000)
    seen, offset = [], None
    while True:
        page = client.get_authentication_log(api_version=2, mintime=mintime, maxtime=maxtime, limit="100",
                                             sort="ts:asc", next_offset=offset)
        seen.extend(record["txid"] for record in page["authlogs"])
        offset = page["metadata"]["next_offset"]
        if offset is None:
            break
    assert seen == [f"tx-{n:04d}" for n in range(250)]
    assert duo.rejected_signatures == 0


def test_duo_client_pages_telephony_activity_v1_logs_and_trust_monitor(duo):
    now = time.time()
    for number in range(5):
        duo.add("telephony", {"telephony_id": f"tel-{number}", "ts": iso(now - 600 + number), "credits": 1})
        duo.add("activity", {"activity_id": f"act-{number}", "ts": iso(now - 600 + number), "action": "x"})
        duo.add("admin", {"timestamp": int(now) - 600 + number, "action": "user_update", "object": f"u{number}"})
        duo.add("offline_enrollment", {"timestamp": int(now) - 600 + number, "action": "o2fa_user_provisioned",
                                       "object": f"u{number}"})
        duo.add("trust_monitor", {"sbtid": f"sb-{number}", "surfaced_timestamp": int((now - 600 + number) * 1000)})
    client = admin(duo)
    mintime, maxtime = int((now - 3600) * 1000), int(now * 1000)
    telephony = client.get_telephony_log(api_version=2, mintime=mintime, maxtime=maxtime, limit=2, sort="asc")
    assert [item["telephony_id"] for item in telephony["items"]] == ["tel-0", "tel-1"]
    assert telephony["metadata"]["next_offset"] == f"{int((now - 599) * 1000)},tel-1"
    rest = client.get_telephony_log(api_version=2, mintime=mintime, maxtime=maxtime, limit=10, sort="asc",
                                    next_offset=telephony["metadata"]["next_offset"])
    assert [item["telephony_id"] for item in rest["items"]] == ["tel-2", "tel-3", "tel-4"]
    activity = client.get_activity_logs(mintime=mintime, maxtime=maxtime, limit="10", sort="ts:asc")
    assert [item["activity_id"] for item in activity["items"]] == [f"act-{n}" for n in range(5)]
    assert [row["object"] for row in client.get_administrator_log(mintime=int(now) - 598)] == ["u2", "u3", "u4"]
    assert len(client.get_offline_log(mintime=int(now) - 3600)) == 5
    events = list(client.get_trust_monitor_events_iterator(mintime=mintime, maxtime=maxtime))
    assert [event["sbtid"] for event in events] == [f"sb-{n}" for n in range(5)]
    assert duo.rejected_signatures == 0


def test_a_wrong_secret_key_is_refused_with_40103(duo):
    with pytest.raises(RuntimeError, match="Invalid signature") as refused:
        admin(duo, skey=SKEY[:-1] + "x").get_administrator_log(mintime=int(time.time()) - 60)
    assert refused.value.status == 401 and refused.value.data["code"] == 40103
    assert duo.rejected_signatures == 1


def test_an_unknown_integration_key_is_refused(duo):
    with pytest.raises(RuntimeError, match="Invalid integration key") as refused:
        admin(duo, ikey="DIXXXXXXXXXXXXXXXXXX").get_administrator_log(mintime=int(time.time()) - 60)
    assert refused.value.status == 401


def test_parameters_signed_in_another_order_or_encoding_are_refused(duo):
    path = "/admin/v1/logs/administrator"
    assert signed_get(duo, path, "mintime=1", "mintime=1").status_code == 200
    path = "/admin/v2/logs/activity"
    mintime, maxtime = int(time.time() * 1000) - 60_000, int(time.time() * 1000)
    query = f"mintime={mintime}&maxtime={maxtime}&sort=ts%3Aasc"
    assert signed_get(duo, path, query, f"maxtime={maxtime}&mintime={mintime}&sort=ts%3Aasc").status_code == 200
    unsorted = signed_get(duo, path, query, f"mintime={mintime}&maxtime={maxtime}&sort=ts%3Aasc")
    assert unsorted.status_code == 401 and unsorted.json()["code"] == 40103
    raw_colon = signed_get(duo, path, query, f"maxtime={maxtime}&mintime={mintime}&sort=ts:asc")
    assert raw_colon.status_code == 401 and raw_colon.json()["code"] == 40103
    changed = signed_get(duo, path, query.replace("ts%3Aasc", "ts%3Adesc"),
                         f"maxtime={maxtime}&mintime={mintime}&sort=ts%3Aasc")
    assert changed.status_code == 401


def test_the_date_must_be_the_signed_one_and_within_five_minutes(duo):
    path = "/admin/v1/logs/administrator"
    other_date = email.utils.formatdate(time.time() + 1)
    assert signed_get(duo, path, "mintime=1", "mintime=1", sent_date=other_date).status_code == 401
    old = email.utils.formatdate(time.time() - 301)
    assert signed_get(duo, path, "mintime=1", "mintime=1", date=old).status_code == 401
    recent = email.utils.formatdate(time.time() - 240)
    assert signed_get(duo, path, "mintime=1", "mintime=1", date=recent).status_code == 200


def test_a_skewed_server_clock_refuses_duo_client_and_says_so_in_its_date_header(duo):
    duo.clock_offset = 600
    reply = signed_get(duo, "/admin/v1/logs/administrator", "mintime=1", "mintime=1")
    assert reply.status_code == 401 and reply.json()["code"] == 40103
    server_date = email.utils.parsedate_to_datetime(reply.headers["Date"]).timestamp()
    assert server_date - time.time() > 590


def test_scripted_429s_and_a_missing_read_log_grant(duo):
    duo.throttle("admin", 2)
    path = "/admin/v1/logs/administrator"
    assert [signed_get(duo, path, "mintime=1", "mintime=1").status_code for _ in range(3)] == [429, 429, 200]
    duo.read_log_granted = False
    denied = signed_get(duo, path, "mintime=1", "mintime=1")
    assert denied.status_code == 403 and denied.json()["code"] == 40301
