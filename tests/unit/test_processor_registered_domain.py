"""registered_domain: Filebeat's documented example, the bundled suffix list, failures and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, run

DOCUMENTED = """
processors:
  - registered_domain:
      field: dns.question.name
      target_field: dns.question.registered_domain
      target_etld_field: dns.question.top_level_domain
      target_subdomain_field: dns.question.subdomain
      ignore_missing: true
      ignore_failure: true
"""


def test_documented_example_splits_a_name_under_a_two_label_suffix():
    event = run(build(DOCUMENTED), {"dns": {"question": {"name": "www.google.co.uk"}}})
    assert event.fields["dns"]["question"] == {
        "name": "www.google.co.uk", "registered_domain": "google.co.uk", "top_level_domain": "co.uk",
        "subdomain": "www"}


def test_private_suffixes_count_and_a_bare_domain_has_no_subdomain():
    processors = build("processors:\n  - registered_domain: {field: host, target_field: rd, "
                       "target_subdomain_field: sub}\n")
    assert run(processors, {"host": "a.b.example.blogspot.com"}).fields == {
        "host": "a.b.example.blogspot.com", "rd": "example.blogspot.com", "sub": "a.b"}
    assert run(processors, {"host": "example.com."}).fields == {"host": "example.com.", "rd": "example.com"}


def test_a_public_suffix_alone_fails_unless_ignore_failure():
    strict = build("processors:\n  - registered_domain: {field: host, target_field: rd}\n")
    with pytest.raises(FieldError, match="registered domain"):
        strict[0](Event({"host": "co.uk"}))
    with pytest.raises(FieldError, match="not found"):
        strict[0](Event({"other": 1}))
    assert run(build(DOCUMENTED), {"dns": {"question": {"name": "co.uk"}}}).fields == {
        "dns": {"question": {"name": "co.uk"}}}


def test_when_selects_events():
    processors = build("processors:\n  - registered_domain: {field: url.domain, target_field: url.registered_domain, "
                       "when.equals.event.kind: web}\n")
    assert run(processors, {"url": {"domain": "mail.example.org"}, "event": {"kind": "web"}}).fields["url"] == {
        "domain": "mail.example.org", "registered_domain": "example.org"}
    assert run(processors, {"url": {"domain": "mail.example.org"}}).fields["url"] == {"domain": "mail.example.org"}


@pytest.mark.parametrize(("domain", "registered", "subdomain", "etld"), [
    ("www.google.com", "google.com", "www", "com"),
    ("www.google.co.uk", "google.co.uk", "www", "co.uk"),
    ("www.mail.google.co.uk", "google.co.uk", "www.mail", "co.uk"),
    ("google.com", "google.com", None, "com"),
    ("www.ak.local", "ak.local", "www", "local"),
    ("www.navy.mil", "navy.mil", "www", "mil"),
    ("com", None, None, None),
    (".", None, None, None),
    ("", None, None, None),
    ("localhost", None, None, None),
])
def test_filebeat_vectors_in_metadata_fields(domain, registered, subdomain, etld):
    processors = build("""
processors:
  - registered_domain:
      field: "@metadata.domain"
      target_field: "@metadata.registered_domain"
      target_subdomain_field: "@metadata.subdomain"
      target_etld_field: "@metadata.etld"
""")
    event = Event({}, meta={"domain": domain})
    if registered is None:
        with pytest.raises(FieldError):
            processors[0](event)
        assert event.meta == {"domain": domain}
        return
    expected = {"domain": domain, "registered_domain": registered, "etld": etld}
    if subdomain:
        expected["subdomain"] = subdomain
    assert processors[0](event).meta == expected
