"""The sophos module's xg fileset: the ECS mapping of both SFOS payload generations, per log type, and failures."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from forwarder.inputs.syslog_parser import SyslogParser
from forwarder.modules.sophos_processor import build_sophos_xg
from forwarder.modules.sophos_xg_ecs import SophosRecordError
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.schema.section import Section

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "sophos"
SFOS18 = (CORPUS / "sfos18.log").read_text().splitlines()
SFOS19 = (CORPUS / "sfos19.log").read_text().splitlines()
EXPECTED_CATEGORIES = {
    "Firewall": ["network"], "IDP": ["network", "intrusion_detection"],
    "ATP": ["network", "malware", "intrusion_detection"], "Anti-Virus": ["malware"], "Sandbox": ["malware"],
    "Content Filtering": ["network", "web"], "WAF": ["network", "web"], "Anti-Spam": ["email"],
    "System Health": ["host"], "Wireless Protection": ["network"], "Heartbeat": ["host"], "SD-WAN": ["network"],
    "SSL": ["network"],
}


def processor(**options):
    problems: list = []
    built = build_sophos_xg(Section(options, "processors.0.sophos_xg", "forwarder.yml", problems))
    assert problems == []
    return built


def mapped(line: str, **options) -> Event:
    return processor(**options)(Event({"message": line}, 1_700_000_000.0))


def line_of(lines: list[str], log_type: str, index: int = 0) -> str:
    return [line for line in lines if f'log_type="{log_type}"' in line][index]


def test_every_corpus_line_maps_with_its_log_id_and_the_log_types_categories():
    types_seen = set()
    for line in SFOS18 + SFOS19:
        event = mapped(line, timezone="UTC")
        log_id = re.search(r"log_id=(\d{12})", line).group(1)
        log_type = re.search(r'log_type="([^"]+)"', line).group(1)
        types_seen.add(log_type)
        assert event.fields["event"]["code"] == log_id
        assert event.fields["event"]["severity"] == int(log_id[6])
        assert event.fields["sophos"]["xg"]["message_id"] == log_id[7:]
        assert event.fields["sophos"]["xg"]["log_type"] == log_type
        assert event.fields["observer"]["vendor"] == "Sophos"
        if log_type != "Event":
            assert event.fields["event"]["category"] == EXPECTED_CATEGORIES[log_type]
        assert "tags" not in event.fields
    assert types_seen == set(EXPECTED_CATEGORIES) | {"Event"}


def test_sfos18_firewall_record():
    event = mapped(SFOS18[0], timezone="Asia/Kolkata")
    fields = event.fields
    assert format_timestamp(event.timestamp) == "2017-01-31T08:46:19.000Z"
    assert fields["source"] == {"ip": "10.108.108.49", "port": 60417, "mac": "00:1a:2b:3c:4d:5e", "bytes": 1200,
                                "packets": 10, "geo": {"country_iso_code": "R1"},
                                "nat": {"ip": "203.0.113.9", "port": 40001}}
    assert fields["destination"] == {"ip": "104.28.2.124", "port": 443, "bytes": 5400, "packets": 12,
                                     "geo": {"country_iso_code": "USA"}, "nat": {"port": 0}}
    assert fields["observer"] == {"vendor": "Sophos", "product": "XG", "type": "firewall",
                                  "serial_number": "C0123456789012",
                                  "ingress": {"interface": {"name": "PortA"}, "zone": "LAN"},
                                  "egress": {"interface": {"name": "PortB"}, "zone": "WAN"}}
    assert fields["network"] == {"transport": "tcp", "protocol": "HTTPS"}
    assert fields["rule"] == {"id": "5", "ruleset": "1"}
    assert fields["user"] == {"name": "jsmith", "group": {"name": "Staff"}}
    assert fields["event"] == {"kind": "event", "code": "010101600001", "severity": 6, "duration": 120_000_000_000,
                               "action": "allow", "outcome": "success", "category": ["network"],
                               "type": ["allowed", "end", "connection"]}
    assert fields["log"] == {"level": "information"}
    assert fields["related"] == {"ip": ["10.108.108.49", "203.0.113.9", "104.28.2.124"], "user": ["jsmith"],
                                 "hosts": ["firewall.localgroup.local"]}
    xg = fields["sophos"]["xg"]
    assert xg["log_type_id"] == "01" and xg["log_component_id"] == "01" and xg["log_subtype_id"] == "01"
    assert xg["connid"] == "1615935616" and xg["hb_health"] == "No Heartbeat" and xg["timezone"] == "IST"
    assert not {"src_ip", "dst_port", "user_name", "date", "time", "log_id", "message", "dir_disp",
                "tran_dst_ip"} & set(xg)
    assert fields["message"] == SFOS18[0]


def test_sfos18_unquoted_value_with_spaces_and_denied_connection():
    fields = mapped(SFOS18[1], timezone="UTC").fields
    assert fields["sophos"]["xg"]["ether_type"] == "Unknown (0x0000)"
    assert fields["event"]["type"] == ["denied", "start", "connection"]
    assert fields["event"]["outcome"] == "success"
    assert "egress" not in fields["observer"]
    assert fields["network"]["transport"] == "udp"


def test_sfos19_firewall_record_with_known_device_and_nat():
    event = mapped(line_of(SFOS19, "Firewall"), known_devices=[{"serial_number": "X21004ABCDEF",
                                                               "hostname": "fw1.corp.example"}])
    fields = event.fields
    assert format_timestamp(event.timestamp) == "2022-05-10T06:10:02.000Z"
    assert fields["host"] == {"name": "fw1.corp.example"}
    assert fields["observer"]["serial_number"] == "X21004ABCDEF"
    assert fields["observer"]["ingress"] == {"interface": {"name": "Port1"}, "zone": "LAN"}
    assert fields["source"]["nat"] == {"ip": "198.51.100.2", "port": 51515}
    assert fields["source"]["packets"] == 1 and fields["destination"]["bytes"] == 90
    assert fields["source"]["geo"] == {"country_iso_code": "R1"}
    assert fields["user"]["name"] == "alice@corp.example"
    assert fields["rule"] == {"id": "7", "name": "LAN to WAN"}
    assert fields["event"]["duration"] == 30_000_000_000
    assert fields["event"]["type"] == ["allowed", "end", "connection"]
    assert fields["sophos"]["xg"]["ether_type"] == "IPv4 (0x0800)"
    assert fields["sophos"]["xg"]["severity"] == "Information"


def test_sfos19_padded_zone_and_empty_markers():
    fields = mapped(SFOS19[-1]).fields
    assert fields["observer"]["ingress"] == {"interface": {"name": "Port1"}, "zone": "LAN"}
    assert "user" not in fields and "message" not in fields["sophos"]["xg"]
    assert fields["host"] == {"name": "firewall.localgroup.local"}


def test_per_type_fields():
    idp = mapped(line_of(SFOS19, "IDP")).fields
    assert idp["event"]["kind"] == "alert" and idp["event"]["action"] == "drop"
    assert idp["rule"]["name"] == "OS-WINDOWS Microsoft SMB remote code execution"
    assert idp["rule"]["category"] == "Attempted Administrator Privilege Gain"
    antivirus = mapped(line_of(SFOS18, "Anti-Virus"), timezone="UTC").fields
    assert antivirus["file"] == {"name": "eicar.com"}
    assert antivirus["url"] == {"original": "http://www.eicar.org/download/eicar.com", "domain": "www.eicar.org"}
    assert antivirus["user_agent"] == {"original": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert antivirus["sophos"]["xg"]["virus"] == "EICAR-AV-Test"
    spam = mapped(line_of(SFOS18, "Anti-Spam"), timezone="UTC").fields
    assert spam["email"] == {"from": {"address": "spammer@bad.example"}, "to": {"address": "carol@example.com"},
                             "subject": "Cheap watches, great prices"}
    waf = mapped(line_of(SFOS19, "WAF")).fields
    assert waf["event"]["action"] == "deny"
    assert waf["sophos"]["xg"]["querystring"] == "?id=1' OR '1'='1"
    assert waf["http"] == {"response": {"status_code": 403}}
    sandbox = mapped(line_of(SFOS18, "Sandbox"), timezone="UTC").fields
    assert sandbox["file"] == {"name": "invoice.exe", "size": 204800,
                               "hash": {"sha1": "3395856ce81f2b7382dee72602f798b642f14140"}}
    assert sandbox["destination"]["ip"] == "198.51.100.88"
    login = mapped(line_of(SFOS18, "Event", 0), timezone="UTC").fields
    assert login["event"]["category"] == ["authentication"] and login["event"]["outcome"] == "success"
    failed = mapped(line_of(SFOS18, "Event", 1), timezone="UTC").fields
    assert failed["event"]["outcome"] == "failure" and failed["user"]["name"] == "mallory"
    assert failed["sophos"]["xg"]["message"].endswith("because of wrong credentials")
    dhcp = mapped(SFOS19[0]).fields
    assert dhcp["event"]["category"] == ["host"] and dhcp["event"]["action"] == "renew"
    health = mapped(line_of(SFOS19, "System Health")).fields
    assert health["event"]["kind"] == "metric" and health["event"]["type"] == ["info"]
    sdwan = mapped(line_of(SFOS19, "SD-WAN")).fields
    assert sdwan["event"]["outcome"] == "failure" and sdwan["event"]["type"] == ["info"]


def test_sfos18_local_time_zone_choice():
    line = SFOS18[0]
    assert format_timestamp(mapped(line, timezone="+0100").timestamp) == "2017-01-31T13:16:19.000Z"
    utc_line = line.replace('timezone="IST"', 'timezone="UTC"')
    assert format_timestamp(mapped(utc_line).timestamp) == "2017-01-31T14:16:19.000Z"


@pytest.mark.parametrize("framed", [
    "<30>{payload}",
    "<30>Nov 16 02:52:23 sophos-fw {payload}",
    "<30>Nov 16 02:52:23 {payload}",
    "<13>1 2022-05-10T06:10:02Z fw.example sophos - - - {payload}",
])
def test_payload_behind_any_header_the_syslog_input_reads(framed: str):
    payload = SFOS19[0]
    parsed = SyslogParser().parse(framed.format(payload=payload).encode())
    event = Event({"message": parsed.message, "log": {"syslog": parsed.syslog}}, parsed.timestamp)
    fields = processor()(event).fields
    assert fields["event"]["code"] == "063411660020"
    assert fields["sophos"]["xg"]["device_name"] == "SFW"
    assert "=" not in fields["log"]["syslog"].get("hostname", "")
    assert format_timestamp(event.timestamp) == "2021-11-16T02:52:23.000Z"


def test_header_left_in_the_text_is_skipped():
    event = mapped("<30>Nov 16 02:52:23 fw " + SFOS19[0])
    assert event.fields["event"]["code"] == "063411660020"


@pytest.mark.parametrize(("line", "reason"), [
    ("", "no key=value"),
    ("complete garbage without pairs", "no key=value"),
    ('device_name="SFW" timestamp="2021-11-15T20:52:23-0600" log_type="Event"', "no log_id"),
    ('device_name="SFW" log_id=0634 log_type="Event" timestamp="2021-11-15T20:52:23-0600"', "12-digit"),
    ('device_name="SFW" log_id=063411660020 timestamp="2021-11-15T20:52:23-0600"', "no log_type"),
    ('device_name="SFW" log_id=063411660020 log_type="Event"', "no time"),
    ('device_name="SFW" log_id=063411660020 log_type="Event" timestamp="yesterday"', "unreadable time"),
    ('device="SFW" date=2017-13-45 time=99:00:00 log_id=010101600001 log_type="Firewall"', "unreadable time"),
    ('device_name="SFW timestamp="2021-11-15T20:52:23-0600 log_id="0634116', "12-digit"),
])
def test_a_line_that_is_not_a_record_raises_and_leaves_the_event_unchanged(line: str, reason: str):
    event = Event({"message": line, "log": {"syslog": {"priority": 30}}}, 1_700_000_000.0)
    before = copy.deepcopy(event.fields)
    with pytest.raises(SophosRecordError, match=reason):
        processor()(event)
    assert event.fields == before and event.timestamp == 1_700_000_000.0


def test_bad_known_devices_entry_is_reported_with_its_key():
    problems: list = []
    build_sophos_xg(Section({"known_devices": [{"serial": "1"}]}, "processors.0.sophos_xg", "forwarder.yml",
                            problems))
    text = " ".join(str(problem) for problem in problems)
    assert "known_devices.0" in text and "serial_number" in text
