"""The cisco_umbrella processor: Umbrella CSV lines, shaped as the aws-s3 input publishes them, mapped onto ECS.

Lines are Umbrella's documented examples (docs.umbrella.com, quoted in apis.md §5) and realistic rows
of each log type. Failures go through a real PipelineClient, whose error policy tags them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from forwarder.modules.cisco_umbrella_processor import build_cisco_umbrella, umbrella_processors
from forwarder.pipeline.event import Event
from forwarder.schema.section import Problem, Section

BUCKET = "cisco-managed-us-east-1"
PREFIX = "1234567_0123456789abcdef0123456789abcdef01234567"
READ_AT = 1_900_000_000.0

DNS_DOC = ('"2015-01-16 17:48:41","ActiveDirectoryUserName","ActiveDirectoryUserName,ADSite,Network","10.10.1.100",'
           '"24.123.132.133","Blocked","1 (A)","NOERROR","domain-visited.com.","Chat,Photo Sharing,Social Networking",'
           '"AD User","AD User,Site,Network","Chat,Social Networking"')
FIREWALL_DOC = ('"2019-01-14 18:03:46","[211039844]","Passive Monitor","CDFW Tunnel Device","OUTBOUND","1","84",'
                '"172.17.3.4","","146.112.255.129","","ams1.edc","12","ALLOW","google.com,apple.com","44,66"')
AUDIT_DOC = ('"","2021-07-22 10:46:45","admin@example.com","","logexportconfigurations","update","","version: 4",'
             '"version: 5"')


def umbrella_event(line: str, folder: str, day: str = "2024-06-10") -> Event:
    """An event as the aws-s3 input makes it from one line of an Umbrella object."""
    key = f"{PREFIX}/{folder}/{day}/{day}-10-20-ab3f.csv.gz"
    return Event({
        "message": line,
        "log": {"file": {"path": f"https://{BUCKET}.s3.us-east-1.amazonaws.com/{key}"}, "offset": 0},
        "aws": {"s3": {"bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"}, "object": {"key": key}}},
        "cloud": {"provider": "aws", "region": "us-east-1"},
    }, timestamp=READ_AT, meta={"_id": "0123456789-000000000000"})


def mapped(line: str, folder: str) -> Event:
    return umbrella_processors(["dnslogs", "proxylogs", "iplogs", "cloudfirewalllogs", "firewalllogs",
                                "intrusionlogs", "dlplogs", "auditlogs"])[0](umbrella_event(line, folder))


def utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def test_documented_dns_line_maps_as_the_integration_maps_it() -> None:
    event = mapped(DNS_DOC, "dnslogs")
    assert event.timestamp == utc("2015-01-16 17:48:41")
    fields = event.fields
    assert fields["message"] == DNS_DOC
    assert fields["aws"]["s3"]["object"]["key"].endswith(".csv.gz") and fields["log"]["offset"] == 0
    assert fields["source"] == {"address": "10.10.1.100", "ip": "10.10.1.100", "nat": {"ip": "24.123.132.133"}}
    assert fields["dns"] == {"question": {"name": "domain-visited.com", "type": "1 (A)"},
                             "response_code": "NOERROR", "type": "query"}
    assert fields["event"] == {"kind": "event", "category": ["network"], "type": ["denied", "connection"],
                               "action": "dns-request-Blocked", "outcome": "failure"}
    assert fields["cisco"]["umbrella"] == {
        "identity": "ActiveDirectoryUserName",
        "identities": ["ActiveDirectoryUserName", "ADSite", "Network"],
        "categories": ["Chat", "Photo Sharing", "Social Networking"],
        "policy_identity_type": "AD User",
        "identity_types": ["AD User", "Site", "Network"],
        "blocked_categories": ["Chat", "Social Networking"],
    }
    assert fields["observer"] == {"vendor": "Cisco", "product": "Umbrella", "type": "dns"}
    assert fields["related"] == {"ip": ["10.10.1.100", "24.123.132.133"], "hosts": ["domain-visited.com"]}
    assert "destination" not in fields, "the external IP is the NAT address, not the destination"


def test_dns_identity_with_commas_and_stray_spaces_names_the_user() -> None:
    line = ('"2020-07-23 23:50:25", "Dough, John (john@example.com)", "Dough, John (john@example.com),HQ Site",'
            '"10.0.0.1","not-an-ip","Allowed","28 (AAAA)","NXDOMAIN","example.org.","Business Services",'
            '"AD Users","AD Users,Sites",""')
    fields = mapped(line, "dnslogs").fields
    umbrella = fields["cisco"]["umbrella"]
    assert umbrella["identities"] == ["Dough, John (john@example.com)", "HQ Site"]
    assert fields["user"] == {"full_name": "Dough, John", "email": "john@example.com", "name": "john",
                              "domain": "example.com", "id": "john@example.com"}
    assert fields["network"] == {"name": ["HQ Site"]}
    assert fields["source"] == {"address": "10.0.0.1", "ip": "10.0.0.1"}, "a NAT value that is no IP is left out"
    assert fields["event"]["type"] == ["allowed", "connection"] and fields["event"]["outcome"] == "success"
    assert "blocked_categories" not in umbrella
    assert fields["related"]["user"] == ["john"]


def test_older_dns_schema_with_ten_columns_maps_what_it_has() -> None:
    line = ('"2016-03-01 08:00:00","laptop-7","laptop-7","192.168.1.20","198.51.100.4","Allowed","1 (A)","NOERROR",'
            '"a.example.","Search"')
    fields = mapped(line, "dnslogs").fields
    assert fields["dns"]["question"]["name"] == "a.example"
    assert fields["cisco"]["umbrella"]["categories"] == ["Search"]
    assert "identity_types" not in fields["cisco"]["umbrella"]


def test_proxy_line_with_quoted_commas_and_escaped_quotes() -> None:
    agent = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 "beta"'
    line = ('"2024-06-10 10:21:42","LAPTOP-42.corp.example.com","10.1.2.3","203.0.113.9","198.51.100.20",'
            '"text/html","BLOCKED","https://shop.example.net:8443/cart/item.php?id=1,2&x=%20#top",'
            '"https://www.example.net/","' + agent.replace('"', '""') + '","403","512","2048","1024",'
            '"a459e1374395119b8a5aa26cf97738c3864d3130e93c083fbab6da3fe1ad9175","Shopping,Gambling","","","","",""'
            ',"Roaming Computers","Gambling","LAPTOP-42.corp.example.com,HQ","Roaming Computers,Sites","POST","","",'
            '"item.php","13671956","27","1001,1002","","","",'
            '"PROXY_CHAINING","SWG","","","","","dfw2","","","","","","","8111111"')
    event = mapped(line, "proxylogs")
    fields = event.fields
    assert event.timestamp == utc("2024-06-10 10:21:42")
    assert fields["user_agent"] == {"original": agent}
    assert fields["url"] == {"original": "https://shop.example.net:8443/cart/item.php?id=1,2&x=%20#top",
                             "full": "https://shop.example.net:8443/cart/item.php?id=1,2&x=%20#top",
                             "scheme": "https", "domain": "shop.example.net", "port": 8443,
                             "path": "/cart/item.php", "extension": "php", "query": "id=1,2&x=%20",
                             "fragment": "top"}
    assert fields["http"] == {"request": {"mime_type": "text/html", "referrer": "https://www.example.net/",
                                          "bytes": 512, "method": "POST"},
                              "response": {"status_code": 403, "bytes": 2048, "body": {"bytes": 1024}}}
    assert fields["destination"] == {"address": "198.51.100.20", "ip": "198.51.100.20"}
    assert fields["source"]["nat"] == {"ip": "203.0.113.9"}
    assert fields["event"]["action"] == "proxy-request-POST"
    assert fields["event"]["type"] == ["denied", "connection"]
    assert fields["host"] == {"name": "laptop-42.corp.example.com", "hostname": "laptop-42",
                              "domain": "corp.example.com"}
    assert fields["rule"] == {"id": "27"} and fields["file"] == {"name": "item.php"}
    umbrella = fields["cisco"]["umbrella"]
    assert umbrella["categories"] == "Shopping,Gambling", "only DNS rows split categories (as the integration)"
    assert umbrella["forwarding_method"] == "PROXY_CHAINING" and umbrella["datacenter"] == "dfw2"
    assert umbrella["organization_id"] == "8111111"
    assert fields["related"]["hash"] == ["a459e1374395119b8a5aa26cf97738c3864d3130e93c083fbab6da3fe1ad9175"]
    assert "extra_columns" not in umbrella


def test_ip_log_line() -> None:
    line = ('"2017-10-02 19:58:12","TheComputerName","172.16.0.10","55605","10.10.10.10","443",'
            '"Unauthorized IP Tunnel Access"')
    fields = mapped(line, "iplogs").fields
    assert fields["source"] == {"address": "172.16.0.10", "ip": "172.16.0.10", "port": 55605}
    assert fields["destination"] == {"address": "10.10.10.10", "ip": "10.10.10.10", "port": 443}
    assert fields["cisco"]["umbrella"] == {"identity": "TheComputerName", "categories": "Unauthorized IP Tunnel Access"}
    assert fields["observer"]["type"] == "firewall"
    assert fields["event"] == {"kind": "event", "category": ["network"], "type": ["connection"]}


@pytest.mark.parametrize("folder", ["cloudfirewalllogs", "firewalllogs"])
def test_documented_cloud_firewall_line(folder: str) -> None:
    fields = mapped(FIREWALL_DOC, folder).fields
    assert fields["network"] == {"direction": "outbound", "transport": "1", "name": ["Passive Monitor"]}
    assert fields["source"] == {"address": "172.17.3.4", "ip": "172.17.3.4", "bytes": 84}
    assert fields["destination"] == {"address": "146.112.255.129", "ip": "146.112.255.129"}
    assert fields["rule"] == {"id": "12"}
    assert fields["event"]["action"] == "fw-connection-ALLOW" and fields["event"]["outcome"] == "success"
    assert fields["cisco"]["umbrella"]["fqdns"] == ["google.com", "apple.com"]
    assert fields["cisco"]["umbrella"]["destination_lists_id"] == "44,66"
    assert fields["related"]["hosts"] == ["google.com", "apple.com"]


def test_newer_schema_columns_are_kept_not_errors() -> None:
    v10_tail = '"1718014800","1718014860","12","10","4096","2048","9b2c","US","1234","","","","","","",""'
    event = mapped(FIREWALL_DOC + "," + v10_tail, "cloudfirewalllogs")
    umbrella = event.fields["cisco"]["umbrella"]
    assert umbrella["extra_columns"][:6] == ["1718014800", "1718014860", "12", "10", "4096", "2048"]
    assert len(umbrella["extra_columns"]) == 16
    assert "tags" not in event.fields and "error" not in event.fields


def test_intrusion_line() -> None:
    line = ('"2022-04-12 16:14:09","Firewall Tunnel 1","Network Tunnels","1","16606",'
            '"SERVER-ORACLE BEA WebLogic Server Plug-ins Certificate overflow attempt","1323","HIGH",'
            '"Attempted User Privilege Gain","cve-2009-1016","TCP","12345","172.17.3.4","33010","67.43.156.12","443",'
            '"Would Block"')
    fields = mapped(line, "intrusionlogs").fields
    assert fields["event"] == {"kind": "alert", "category": ["network", "intrusion_detection"],
                               "type": ["allowed", "connection", "info"], "action": "ips-Would-Block",
                               "outcome": "success", "id": "12345", "severity": 3}
    assert fields["network"] == {"protocol": "TCP", "name": ["Firewall Tunnel 1"]}
    assert fields["cisco"]["umbrella"]["sid"] == "16606" and fields["cisco"]["umbrella"]["severity"] == "HIGH"
    assert fields["destination"]["port"] == 443 and fields["observer"]["type"] == "idps"


def test_dlp_line_with_extra_columns() -> None:
    line = ('"2022-02-15 12:05:45","Real Time","f64dcc3f-50fa-410a-b8e1-589894276cee","CRITICAL","Network1","",'
            '"first.xlsx","Dropbox","http://google.com","BLOCK","rule-1","classification-2","classifier-2.1",'
            '"text/html","48","abbd2352c3cfea8846871928bf99ca24dc3a6f162170926649381a6d968869ab", "Confidential",'
            '"","","dlpprivateresource","","https","67.43.156.12","443","8247177"')
    fields = mapped(line, "dlplogs").fields
    assert fields["event"]["action"] == "dlp-BLOCK" and fields["event"]["severity"] == 4
    assert fields["event"]["provider"] == "Real Time" and fields["event"]["category"] == ["network", "file"]
    assert fields["file"] == {"name": "first.xlsx", "mime_type": "text/html", "size": 48,
                              "hash": {"sha256": "abbd2352c3cfea8846871928bf99ca24dc3a6f162170926649381a6d968869ab"}}
    assert fields["network"] == {"name": "Network1", "application": "Dropbox"}
    assert fields["rule"] == {"name": "rule-1"}
    assert fields["cisco"]["umbrella"]["file_label"] == "Confidential", "the stray space before it is skipped"
    assert fields["cisco"]["umbrella"]["extra_columns"] == ["", "", "dlpprivateresource", "", "https",
                                                            "67.43.156.12", "443", "8247177"]


def test_documented_audit_line() -> None:
    event = mapped(AUDIT_DOC, "auditlogs")
    fields = event.fields
    assert event.timestamp == utc("2021-07-22 10:46:45")
    assert fields["user"] == {"email": "admin@example.com"}
    assert fields["event"] == {"kind": "event", "category": ["configuration"], "type": ["change"],
                               "action": "update"}
    assert fields["cisco"]["umbrella"]["audit"] == {
        "type": "logexportconfigurations", "before": ["version: 4"], "before_values": {"version": "4"},
        "after": ["version: 5"], "after_values": {"version": "5"}}
    assert "source" not in fields and "related" not in fields


def test_multi_line_audit_record_is_one_event() -> None:
    after = "id: 33333333\noriginId: 222222222\ndescription: name: Host-1234, \"lab\"\nuser: SYSTEM\n"
    line = ('"1234567891","2023-03-28 08:08:07","null","null","onpremlogentry","create","81.2.69.144","","'
            + after.replace('"', '""') + '"')
    fields = mapped(line, "auditlogs").fields
    audit = fields["cisco"]["umbrella"]["audit"]
    assert audit["after"] == ["id: 33333333", "originId: 222222222", 'description: name: Host-1234, "lab"',
                              "user: SYSTEM", ""]
    assert audit["after_values"] == {"id": "33333333", "originId": "222222222",
                                     "description": 'name: Host-1234, "lab"', "user": "SYSTEM"}
    assert "before" not in audit
    assert "user" not in fields, "Umbrella's literal null is no user"
    assert fields["event"]["id"] == "1234567891" and fields["event"]["type"] == ["creation"]
    assert fields["source"] == {"address": "81.2.69.144", "ip": "81.2.69.144"}


BROKEN = [
    ('"2024-06-10 10:00:00","only","three"', "dnslogs", "dnslogs row has 3 columns, expected at least 10"),
    (DNS_DOC.replace("2015-01-16 17:48:41", "16/01/2015 17:48"), "dnslogs", "bad timestamp '16/01/2015 17:48'"),
    ('"2017-10-02 19:58:12","pc","172.16.0.10","high","10.10.10.10","443","x"', "iplogs",
     "column source.port is not a number: 'high'"),
    ('"2024-06-10 10:00:00","unterminated', "dnslogs", "not a CSV record"),
    (DNS_DOC, "somethingelse", "cannot tell the Umbrella log type"),
]


@pytest.mark.parametrize(("line", "folder", "reason"), BROKEN)
def test_a_row_that_does_not_parse_is_forwarded_raw_and_tagged(harness: Any, line: str, folder: str,
                                                                reason: str) -> None:
    client = harness.connect("aws-s3", input_id="cisco-umbrella", module_processors=umbrella_processors(["dnslogs",
                             "iplogs"]), module_fields={"event": {"module": "cisco", "dataset": "cisco.umbrella"}})
    event = client.prepare(umbrella_event(line, folder))
    assert event is not None, "never dropped"
    fields = event.fields
    assert fields["message"] == line
    assert fields["tags"] == ["_parse_failure"]
    assert fields["error"]["message"].startswith("cannot map the record to ECS (cisco_umbrella): ValueError: ")
    assert reason in fields["error"]["message"]
    assert event.timestamp == READ_AT
    assert fields["event"] == {"module": "cisco", "dataset": "cisco.umbrella"}, "no partial mapping"
    assert "source" not in fields and "cisco" not in fields
    assert client.stats.extra["mapping_failures"] == 1


def test_the_log_type_is_read_from_the_object_url_without_a_key() -> None:
    event = umbrella_event(DNS_DOC, "dnslogs")
    del event.fields["aws"]
    assert umbrella_processors(["dnslogs"])[0](event).fields["dns"]["question"]["name"] == "domain-visited.com"


def test_processor_option_log_types_is_checked() -> None:
    problems: list[Problem] = []
    build_cisco_umbrella(Section({"log_types": ["dnslogs", "weblogs"]}, "processors.0.cisco_umbrella", "forwarder.yml",
                                 problems))
    assert [str(problem) for problem in problems] == [
        "forwarder.yml: processors.0.cisco_umbrella.log_types: unknown Umbrella log type(s) weblogs (known: dnslogs, "
        "proxylogs, iplogs, cloudfirewalllogs, firewalllogs, intrusionlogs, dlplogs, auditlogs)"]


def test_a_line_of_a_log_type_not_selected_is_dropped_and_counted(harness: Any) -> None:
    client = harness.connect("aws-s3", input_id="cisco-umbrella", module_processors=umbrella_processors(["dnslogs"]))
    assert client.prepare(umbrella_event(FIREWALL_DOC, "cloudfirewalllogs")) is None
    assert client.stats.filtered == 1
    assert client.prepare(umbrella_event(DNS_DOC, "dnslogs")) is not None
