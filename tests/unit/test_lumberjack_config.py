"""`output.logstash` settings: Filebeat's names and defaults, and one clear line per mistake."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from forwarder.outputs.logstash import OUTPUT_TYPE
from forwarder.outputs.logstash.config import HostAddress, LogstashConfig, parse_host
from forwarder.schema.section import Problem, Section


def parse(data: dict[str, Any]) -> tuple[LogstashConfig, list[str]]:
    problems: list[Problem] = []
    config = OUTPUT_TYPE.parse_config(Section(data, "output.logstash", "forwarder.yml", problems))
    return config, [str(p) for p in problems]


def test_defaults_are_filebeats() -> None:
    config, problems = parse({"enabled": True, "hosts": ["logstash.example:5045"]})
    assert problems == []
    assert config.hosts == [HostAddress("logstash.example", 5045)]
    assert (config.loadbalance, config.workers, config.bulk_max_size, config.slow_start) == (False, 1, 2048, False)
    assert (config.pipelining, config.compression_level, config.escape_html, config.ttl) == (2, 3, False, 0.0)
    assert (config.timeout, config.backoff_init, config.backoff_max) == (30.0, 1.0, 60.0)
    assert config.tls is None and config.ssl_context is None
    assert OUTPUT_TYPE.index(config) == "filebeat"


def test_every_setting_is_read() -> None:
    config, problems = parse({
        "hosts": ["a", "b:6000"], "loadbalance": True, "worker": 3, "bulk_max_size": 512, "slow_start": True,
        "pipelining": 0, "compression_level": 0, "escape_html": True, "ttl": "30s", "timeout": "1m",
        "max_retries": -1, "backoff": {"init": "500ms", "max": "2m"}, "index": "Security",
    })
    assert problems == []
    assert config.hosts == [HostAddress("a", 5044), HostAddress("b", 6000)]
    assert (config.loadbalance, config.workers, config.bulk_max_size, config.slow_start) == (True, 3, 512, True)
    assert (config.pipelining, config.windows_in_flight, config.compression_level) == (0, 1, 0)
    assert (config.escape_html, config.ttl, config.timeout) == (True, 30.0, 60.0)
    assert (config.backoff_init, config.backoff_max) == (0.5, 120.0)
    assert OUTPUT_TYPE.index(config) == "security"


def test_workers_is_read_as_a_synonym_of_worker() -> None:
    config, problems = parse({"hosts": ["a"], "workers": 4})
    assert problems == [] and config.workers == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logstash", HostAddress("logstash", 5044)),
        ("10.0.0.1:5045", HostAddress("10.0.0.1", 5045)),
        ("[::1]:5044", HostAddress("::1", 5044)),
        ("[fe80::1]", HostAddress("fe80::1", 5044)),
        ("2001:db8::7", HostAddress("2001:db8::7", 5044)),
    ],
)
def test_host_forms(text: str, expected: HostAddress) -> None:
    assert parse_host(text) == expected


def test_ipv6_hosts_print_with_brackets() -> None:
    assert str(HostAddress("::1", 5044)) == "[::1]:5044"
    assert str(HostAddress("ls", 5044)) == "ls:5044"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp://ls:5044", "without a scheme"),
        ("ls:http", "port must be a number"),
        ("ls:70000", "port must be a number"),
        ("[::1:5044", "missing ']'"),
        ("[ls.example]:5044", "not an IPv6 address"),
        (":5044", "missing host name"),
    ],
)
def test_bad_hosts_are_reported_with_the_key(text: str, message: str) -> None:
    _, problems = parse({"hosts": [text]})
    assert len(problems) == 1
    assert problems[0].startswith("forwarder.yml: output.logstash.hosts: ")
    assert message in problems[0]


def test_missing_or_empty_hosts_are_errors() -> None:
    assert parse({})[1] == ["forwarder.yml: output.logstash.hosts: is required (a list of strings)"]
    assert parse({"hosts": []})[1] == ["forwarder.yml: output.logstash.hosts: must list at least one host"]


def test_unknown_keys_get_a_suggestion() -> None:
    _, problems = parse({"hosts": ["a"], "bulk_max_sise": 10, "backoff": {"inti": "1s"}})
    hint = "(did you mean 'output.logstash.backoff.init'?)"
    assert f"forwarder.yml: output.logstash.backoff.inti: unknown setting {hint}" in problems
    assert any(p.startswith("forwarder.yml: output.logstash.bulk_max_sise: unknown setting") for p in problems)


def test_proxy_url_is_rejected_clearly() -> None:
    _, problems = parse({"hosts": ["a"], "proxy_url": "socks5://proxy:1080"})
    assert problems == ["forwarder.yml: output.logstash.proxy_url: is not supported by the logstash output; "
                        "remove it or connect directly"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"compression_level": 10}, "compression_level"),
        ({"bulk_max_size": 0}, "bulk_max_size"),
        ({"timeout": "0s"}, "timeout"),
        ({"backoff": {"init": "10s", "max": "1s"}}, "backoff.max"),
        ({"ssl": {"verification_mode": "partial"}}, "ssl.verification_mode"),
        ({"ssl": {"supported_protocols": ["SSLv3"]}}, "ssl.supported_protocols"),
        ({"ssl": {"cipher_suites": ["ECDHE-RSA-AES-128-GCM-SHA256"]}}, "ssl.cipher_suites"),
        ({"ssl": {"certificate_authorities": ["/nonexistent/ca.pem"]}}, "ssl.certificate_authorities"),
    ],
)
def test_invalid_values_name_their_key(data: dict[str, Any], key: str) -> None:
    _, problems = parse({"hosts": ["a"], **data})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"forwarder.yml: output.logstash.{key}: ")


@pytest.fixture
def ca_files(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    client = ca.issue_cert("forwarder.example")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "client.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    client.private_key_pem.write_to_path(str(paths["key"]))
    return {name: str(path) for name, path in paths.items()}


def test_an_ssl_section_enables_tls_unless_disabled(ca_files: dict[str, str]) -> None:
    config, problems = parse({"hosts": ["a"], "ssl": {"certificate_authorities": [ca_files["ca"]]}})
    assert problems == []
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED and config.ssl_context.check_hostname
    disabled, problems = parse({"hosts": ["a"], "ssl": {"enabled": False, "certificate_authorities": [ca_files["ca"]]}})
    assert problems == [] and disabled.ssl_context is None


def test_verification_modes_map_onto_the_context(ca_files: dict[str, str]) -> None:
    def context(mode: str) -> ssl.SSLContext:
        config, problems = parse({"hosts": ["a"], "ssl": {"certificate_authorities": [ca_files["ca"]],
                                                          "verification_mode": mode}})
        assert problems == [] and config.ssl_context is not None
        return config.ssl_context

    assert context("full").check_hostname and context("full").hostname_checks_common_name
    assert context("strict").check_hostname and not context("strict").hostname_checks_common_name
    certificate = context("certificate")
    assert certificate.verify_mode == ssl.CERT_REQUIRED and not certificate.check_hostname
    assert context("none").verify_mode == ssl.CERT_NONE


def test_supported_protocols_bound_the_versions(ca_files: dict[str, str]) -> None:
    config, problems = parse({"hosts": ["a"], "ssl": {"certificate_authorities": [ca_files["ca"]],
                                                      "supported_protocols": ["TLSv1.3"]}})
    assert problems == [] and config.ssl_context is not None
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.ssl_context.maximum_version == ssl.TLSVersion.TLSv1_3


def test_inline_pem_authorities_are_accepted(ca_files: dict[str, str]) -> None:
    pem = Path(ca_files["ca"]).read_text()
    config, problems = parse({"hosts": ["a"], "ssl": {"certificate_authorities": [pem]}})
    assert problems == [] and config.ssl_context is not None


def test_client_certificate_needs_its_key(ca_files: dict[str, str]) -> None:
    _, problems = parse({"hosts": ["a"], "ssl": {"certificate": ca_files["cert"]}})
    assert problems == ["forwarder.yml: output.logstash.ssl.key: ssl.certificate and ssl.key must be set together "
                        "for client authentication"]
    config, problems = parse({"hosts": ["a"], "ssl": {"certificate": ca_files["cert"], "key": ca_files["key"]}})
    assert problems == [] and config.ssl_context is not None


def test_a_wrong_passphrase_is_a_config_error_that_does_not_show_the_passphrase(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("forwarder.example")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right-passphrase"),
    )
    (tmp_path / "key.pem").write_bytes(encrypted)
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    settings = {"certificate": str(tmp_path / "cert.pem"), "key": str(tmp_path / "key.pem")}
    good, problems = parse({"hosts": ["a"], "ssl": {**settings, "key_passphrase": "right-passphrase"}})
    assert problems == [] and good.ssl_context is not None
    for passphrase in ("wrong-passphrase", None):
        _, problems = parse({"hosts": ["a"], "ssl": {**settings, "key_passphrase": passphrase}})
        assert len(problems) == 1 and problems[0].startswith("forwarder.yml: output.logstash.ssl.key: cannot load")
        assert "wrong-passphrase" not in problems[0]
    assert "right-passphrase" not in repr(good)


def test_negative_ttl_and_zero_timeout_are_refused_with_the_shared_bounds_messages() -> None:
    _, problems = parse({"hosts": ["a"], "ttl": -5, "timeout": "0s"})
    assert problems == ["forwarder.yml: output.logstash.timeout: must be a duration greater than 0",
                        "forwarder.yml: output.logstash.ttl: must not be negative"]


def test_an_empty_proxy_url_is_accepted_as_unset() -> None:
    config, problems = parse({"hosts": ["a"], "proxy_url": "", "proxy_use_local_resolver": True})
    assert problems == [] and config.hosts == [HostAddress("a", 5044)]


def test_an_unknown_key_is_reported_once_when_the_caller_finishes_the_section_again() -> None:
    problems: list[Problem] = []
    section = Section({"hosts": ["a"], "pipelinig": 4}, "output.logstash", "forwarder.yml", problems)
    OUTPUT_TYPE.parse_config(section)
    section.finish()
    assert [str(p) for p in problems] == [
        "forwarder.yml: output.logstash.pipelinig: unknown setting (did you mean 'output.logstash.pipelining'?)"]


def test_the_secret_passphrase_is_not_echoed_when_mistyped() -> None:
    _, problems = parse({"hosts": ["a"], "ssl": {"enabled": False, "key_passphrase": ["hunter2-passphrase"]}})
    assert problems == ["forwarder.yml: output.logstash.ssl.key_passphrase: expected a string "
                        "(got a value that is not shown (secret))"]
