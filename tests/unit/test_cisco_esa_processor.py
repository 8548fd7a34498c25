"""The cisco_esa processor on the corpus of each ESA log type (file lines and syslog-pushed lines)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "cisco_esa"
L = "cisco_secure_email_gateway"


def processor(timezone: str = "UTC"):
    problems: list = []
    data = expand_dotted({"processors": [{"cisco_esa": {"timezone": timezone}}]})
    built = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    assert problems == []
    return built[0]


def corpus_events(name: str, timezone: str = "UTC") -> list[Event]:
    """Every line of one corpus file, as the filestream input hands it over, mapped."""
    path = CORPUS / name
    mapping = processor(timezone)
    events = []
    for line in path.read_text().splitlines():
        event = Event({"message": line, "log": {"file": {"path": f"/var/log/cisco-esa/x/{name}"}}})
        assert mapping(event) is event
        events.append(event)
    return events


def log_of(event: Event) -> dict:
    return event.fields[L]["log"]


def by_text(events: list[Event], text: str) -> Event:
    [event] = [event for event in events if text in event.fields["message"]]
    return event


def test_mail_logs_message_flow_carries_mid_icid_dcid_rid():
    events = corpus_events("mail_logs.@20220325T205010.s")
    assert all(log_of(event)["category"]["name"] == "mail_logs" for event in events)
    assert all(event.fields["log"]["level"] == "info" for event in events[:20])
    new_icid = by_text(events, "New SMTP ICID 5")
    assert log_of(new_icid)["injection_connection_id"] == 5
    assert new_icid.fields["source"]["ip"] == "10.1.1.209"
    assert new_icid.fields["destination"]["ip"] == "10.1.1.1"
    assert new_icid.fields["dns"]["question"]["name"] == "remotehost.com"
    assert new_icid.fields["network"]["protocol"] == "smtp"
    assert new_icid.timestamp == datetime(2022, 3, 25, 20, 50, 10, tzinfo=UTC).timestamp()
    start = by_text(events, "Start MID 6")
    assert start.fields["email"]["message_id"] == "6"
    assert log_of(start)["injection_connection_id"] == 5
    sender = by_text(events, "From: <sender@remotehost.com>")
    assert sender.fields["email"]["from"]["address"] == ["sender@remotehost.com"]
    recipient = by_text(events, "To: <mary@yourdomain.com>")
    assert recipient.fields["email"]["to"]["address"] == ["mary@yourdomain.com"]
    assert log_of(recipient)["recipient_id"] == 0
    assert by_text(events, "Subject").fields["email"]["subject"] == "Quarterly report"
    assert log_of(by_text(events, "ready 100 bytes"))["read_bytes"] == 100
    delivery = by_text(events, "Delivery start DCID 8")
    assert (log_of(delivery)["delivery_connection_id"], delivery.fields["email"]["message_id"]) == (8, "6")
    new_dcid = by_text(events, "New SMTP DCID 8")
    assert new_dcid.fields["destination"] == {"ip": "10.5.3.25", "port": 25}
    assert log_of(by_text(events, "DCID 8 close"))["connection_status"] == "close"
    assert log_of(by_text(events, "RID [0] Response"))["response"].startswith("2.0.0 OK")


def test_mail_logs_verdicts_and_policies():
    events = corpus_events("mail_logs.@20220325T205010.s")
    assert log_of(by_text(events, "interim AV verdict"))["engine"] == "Sophos"
    assert log_of(by_text(events, "interim AV verdict"))["verdict"] == "CLEAN"
    assert log_of(by_text(events, "Outbreak Filters"))["verdict"] == "negative"
    spf = log_of(by_text(events, "SPF:"))
    assert (spf["engine"], spf["verified"], spf["identity"]) == ("SPF", "Pass", "sender@remotehost.com")
    dlp = by_text(events, "DLP violation")
    assert (log_of(dlp)["severity"], log_of(dlp)["risk_factor"]) == ("LOW", 15)
    assert dlp.fields["log"]["level"] == "warning"
    accept = log_of(by_text(events, "ACCEPT SG"))
    assert (accept["sender_group"], accept["sbrs_score"], accept["action"]) == ("UNKNOWNLIST", "3.5", "ACCEPT")
    error = by_text(events, "Internal SMTP Error")
    assert error.fields["destination"] == {"ip": "10.5.3.26", "port": 25}


def test_line_no_rule_knows_keeps_its_ids_and_padded_day_parses():
    events = corpus_events("mail_logs.@20220325T205010.s")
    bounced = by_text(events, "Bounced: DCID 9")
    assert bounced.fields["email"]["message_id"] == "7"
    assert log_of(bounced)["delivery_connection_id"] == 9
    assert log_of(bounced)["message"].startswith("Bounced: DCID 9")
    assert bounced.timestamp == datetime(2022, 4, 1, 7, 6, 22, tzinfo=UTC).timestamp()


def test_authentication_with_host_from_the_file_name():
    events = corpus_events("authentication.esa1.example.com.@20220401T070622.s")
    success, failure, _ = events
    assert success.fields["user"]["name"] == "admin" and success.fields["source"]["ip"] == "1.128.3.4"
    assert success.fields["event"]["outcome"] == "success"
    assert failure.fields["event"]["outcome"] == "failure" and failure.fields["user"]["name"] == "operator"
    assert log_of(success)["host"] == "esa1.example.com"
    assert log_of(success)["category"]["name"] == "authentication"
    assert success.fields["event"]["category"] == ["authentication"]


def test_bounces():
    bounced, delayed = corpus_events("bounces.@20220325T210000.s")
    assert bounced.fields["email"]["message_id"] == "15232"
    assert bounced.fields["email"]["from"]["address"] == ["sender@example.com"]
    assert bounced.fields["email"]["to"]["address"] == ["nobody@example.org"]
    log = log_of(bounced)
    assert (log["delivery_connection_id"], log["recipient_id"], log["error_code"]) == (2, 0, "5.1.0")
    assert log["reason"] == "Unknown address error"
    assert log_of(delayed)["bounce_type"] == "Delayed"


def test_antispam_and_antivirus_engines():
    spawned, _ = corpus_events("antispam.@20220325T210000.s")
    assert (log_of(spawned)["engine"], log_of(spawned)["process_id"]) == ("case", 19103)
    _, outdated = corpus_events("antivirus.@20220325T210000.s")
    assert log_of(outdated)["engine"] == "Sophos" and outdated.fields["log"]["level"] == "warning"
    assert outdated.fields["event"]["category"] == ["malware"]


def test_amp_file_reputation():
    query, response = corpus_events("amp.@20220325T210000.s")
    assert query.fields["file"] == {"name": "invoice.pdf", "size": 24576, "mime_type": "application/pdf"}
    assert query.fields["email"]["message_id"] == "5"
    assert log_of(response)["disposition"] == "MALICIOUS"
    assert log_of(response)["threat_name"] == "W32.Zombies.NotAVirus"
    assert response.fields["file"]["hash"]["sha256"].startswith("8ce3b54a")


def test_gui_content_scanner_and_system():
    request, periodic = corpus_events("gui_logs.@20220325T210000.s")
    assert request.fields["source"]["ip"] == "10.10.10.5" and request.fields["user"]["name"] == "admin"
    assert request.fields["http"] == {"response": {"status_code": 200}, "request": {"method": "GET"}, "version": "1.1"}
    assert log_of(periodic)["message"] == "PERIODIC: Could not write to the lock file"
    [scanner] = corpus_events("content_scanner.@20220325T210000.s")
    assert log_of(scanner)["message"].startswith("PF: Starting")
    version = corpus_events("system.@20220325T210000.s")[1]
    assert log_of(version)["message"].startswith("Version: 14.0.0-657")


def test_consolidated_event_cef():
    [event] = corpus_events("consolidated_event.@20220325T210000.s")
    assert event.fields["email"] == {"message_id": "1053", "from": {"address": ["sender@example.com"]},
                                     "to": {"address": ["rcpt1@example.org", "rcpt2@example.org"]},
                                     "subject": "Testing"}
    log = log_of(event)
    assert (log["injection_connection_id"], log["amp_verdict"], log["dkim_verdict"]) == (134, "UNKNOWN", "pass")
    assert event.fields["event"]["action"] == "QUARANTINED"
    assert event.fields["source"]["ip"] == "81.2.69.144"
    assert event.fields["cef"]["device"]["product"] == "C100V Email Security Virtual Appliance"
    assert event.timestamp == datetime(2022, 3, 25, 20, 50, 10, tzinfo=UTC).timestamp()


def test_other_log_types_are_forwarded_raw_with_their_type():
    [status] = corpus_events("status.@20220325T210000.s")
    assert log_of(status) == {"category": {"name": "status"}}
    assert status.fields["message"].startswith("Fri Mar 25 21:00:00 2022 Info: Status: CPULd 0")


def test_timezone_applies_to_file_stamps():
    [event] = corpus_events("content_scanner.@20220325T210000.s", timezone="+0200")
    assert event.timestamp == datetime(2022, 3, 25, 19, 0, 0, tzinfo=UTC).timestamp()


def test_syslog_pushed_line_uses_the_tag_and_keeps_the_input_timestamp():
    event = Event({"message": "Info: MID 6 ICID 5 RID 0 To: <mary@yourdomain.com>",
                   "log": {"syslog": {"appname": "mail_logs", "hostname": "esa1"}}}, timestamp=1234.0)
    processor()(event)
    assert event.fields["email"]["to"]["address"] == ["mary@yourdomain.com"]
    assert log_of(event)["injection_connection_id"] == 5
    assert event.timestamp == 1234.0
    cef = Event({"message": "CEF:0|Cisco|C390 Email Security Appliance|15.0.0-068|ESA_CONSOLIDATED_LOG_EVENT|"
                            "Consolidated Log Event|5|ESAMID=77 ESAICID=9",
                 "log": {"syslog": {"appname": "consolidated_event"}}})
    processor()(cef)
    assert cef.fields["email"]["message_id"] == "77"


def test_syslog_line_stored_in_a_file_is_recognised():
    event = Event({"message": "<166>Mar 17 18:24:37 esa1 mail_logs: Info: Start MID 6 ICID 5"})
    processor()(event)
    assert log_of(event)["category"]["name"] == "mail_logs"
    assert event.fields["email"]["message_id"] == "6"
    assert datetime.fromtimestamp(event.timestamp, UTC).strftime("%m-%d %H:%M:%S") == "03-17 18:24:37"


def test_unknown_log_type_and_bad_cef_raise_before_changing_the_event():
    mapping = processor()
    event = Event({"message": "just text"})
    with pytest.raises(ValueError, match="cannot tell the ESA log type"):
        mapping(event)
    assert event.fields == {"message": "just text"}
    event = Event({"message": "Fri Mar 25 20:50:10 2022 Info: not cef",
                   "log": {"file": {"path": "/l/consolidated_event.@20220325T205010.s"}}})
    with pytest.raises(ValueError, match="not CEF"):
        mapping(event)
    assert set(event.fields) == {"message", "log"}


def test_bad_timezone_is_reported():
    problems: list = []
    data = {"processors": [{"cisco_esa": {"timezone": "Mars/Olympus"}}]}
    build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    assert problems and "timezone" in str(problems[0])
