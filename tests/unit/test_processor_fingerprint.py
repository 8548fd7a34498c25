"""fingerprint: Filebeat's own test vectors, every method and encoding, failures and `when`."""

from __future__ import annotations

import base64
import hashlib

import pytest
import xxhash

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run


def test_filebeat_default_vector_sha256_hex():
    processors = build('processors:\n - fingerprint:\n     fields: ["field1"]\n')
    event = run(processors, {"field1": "foo"})
    assert event.fields["fingerprint"] == "4cf8b768ad20266c348d63a6d1ff5d6f6f9ed0f59f5c68ae031b78e3e04c5144"


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha384", "sha512", "xxhash"])
@pytest.mark.parametrize("encoding", ["hex", "base32", "base64"])
def test_methods_and_encodings_hash_sorted_name_value_pairs(method, encoding):
    processors = build(f"""
processors:
  - fingerprint: {{fields: [b, a, n, flag, "@timestamp"], method: {method}, encoding: {encoding}, target_field: fp}}
""")
    event = run(processors, {"a": "x", "b": 1.0, "n": 12, "flag": True}, timestamp=1_700_000_000.5)
    source = b"|@timestamp|2023-11-14 22:13:20.5 +0000 UTC|a|x|b|1|flag|true|n|12|"
    digest = xxhash.xxh64(source).digest() if method == "xxhash" else hashlib.new(method, source).digest()
    expected = {"hex": digest.hex(), "base32": base64.b32encode(digest).decode(),
                "base64": base64.b64encode(digest).decode()}[encoding]
    assert event.fields["fp"] == expected


def test_missing_and_non_scalar_fields():
    processors = build("processors:\n  - fingerprint: {fields: [a, b]}\n")
    with pytest.raises(FieldError, match=r"failed to find field \[b\]"):
        processors[0](Event({"a": "x"}))
    with pytest.raises(FieldError, match="non-scalar"):
        processors[0](Event({"a": "x", "b": {"c": 1}}))
    lenient = build("processors:\n  - fingerprint: {fields: [a, b], ignore_missing: true, when.has_fields: [a]}\n")
    assert run(lenient, {"a": "x"}).fields["fingerprint"] == hashlib.sha256(b"|a|x|").hexdigest()
    assert "fingerprint" not in run(lenient, {"b": "x"}).fields


def test_unknown_method_is_a_config_error():
    _, problems = build_with_problems("processors:\n  - fingerprint: {fields: [a], method: crc32}\n")
    assert problems and "method" in problems[0]
