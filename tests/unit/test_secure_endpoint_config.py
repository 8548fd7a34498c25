"""The cisco-secure-endpoint input's `url`: a region or an API host, never one carrying credentials."""

from __future__ import annotations

from forwarder.inputs.secure_endpoint_config import parse_config
from forwarder.schema.section import Problem, Section


def problems_for(url: str) -> list[str]:
    problems: list[Problem] = []
    section = Section({"url": url, "client_id": "0123abcd", "api_key": "key-Not-Shown"}, "forwarder.inputs.0",
                      "forwarder.yml", problems)
    parse_config(section)
    section.finish()
    return [str(problem) for problem in problems]


def test_a_url_with_credentials_is_refused_without_echoing_them():
    for url in ("https://0123abcd:s3cr3t-Api-Key@api.amp.cisco.com", "http://0123abcd:s3cr3t-Api-Key@host"):
        (problem,) = problems_for(url)
        assert "forwarder.inputs.0.url" in problem and "must not hold credentials" in problem
        assert "s3cr3t" not in problem


def test_a_region_and_a_host_are_accepted():
    assert problems_for("EU") == []
    assert problems_for("https://api.eu.amp.cisco.com") == []
