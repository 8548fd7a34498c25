"""The duo input's settings: each mistake reported on the key written, with the fix."""

from __future__ import annotations

import pytest

from forwarder.inputs.duo_config import parse_config
from forwarder.schema.section import Problem, Section

VALID = {"api_hostname": "api-1a2b3c4d.duosecurity.com", "integration_key": "DIWJ8X6AEYOR5OMC6TQ1",
         "secret_key": "s3cret-value-Not-Shown", "streams": ["auth"]}


def parse(**overrides: object) -> tuple[object, list[str]]:
    problems: list[Problem] = []
    section = Section({**VALID, **overrides}, "forwarder.inputs.0", "forwarder.yml", problems)
    config = parse_config(section)
    section.finish()
    return config, [str(problem) for problem in problems]


def test_defaults_and_a_tolerated_https_prefix():
    config, problems = parse(api_hostname="https://API-1a2b3c4d.duosecurity.com/")
    assert problems == []
    assert config.api_hostname == "API-1a2b3c4d.duosecurity.com"
    assert (config.poll_interval, config.initial_lookback) == (60.0, 86400.0)
    assert (config.backoff_init, config.backoff_max) == (1.0, 60.0)
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"poll_interval": "30s"}, "forwarder.inputs.0.poll_interval: must be at least 1m"),
    ({"initial_lookback": "200d"}, "forwarder.inputs.0.initial_lookback: must be at most 180d"),
    ({"streams": ["auth", "authentication"]}, "streams: unknown Duo log 'authentication' (known: auth, admin"),
    ({"streams": []}, "streams: is required"),
    ({"api_hostname": "http://api-1a2b3c4d.duosecurity.com"}, "api_hostname: must be reached over https"),
    ({"secret_key": ""}, "secret_key: is required: the Admin API application's secret key"),
    ({"ssl": {"certificate_authorities": ["a.pem", "b.pem"]}}, "give one CA bundle file"),
])
def test_mistakes_are_reported_on_their_key(overrides, expected):
    _config, problems = parse(**overrides)
    assert any(expected in problem for problem in problems), problems
    assert not any("s3cret" in problem for problem in problems)
