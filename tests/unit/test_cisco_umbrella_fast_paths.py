"""The mapping's shortcuts (quoted-row split, dotted-quad IPv4 check) must answer exactly as csv and ipaddress do."""

from __future__ import annotations

import csv
import ipaddress

import pytest

from forwarder.modules.cisco_umbrella_columns import parse_row
from forwarder.modules.cisco_umbrella_ecs import is_ip

ROWS = [
    '"2024-06-10 10:00:00","u@x.com","a,b","10.0.0.1","","Allowed"',
    '""', '"",""', '"a",""', '"a","b', 'a","b"', '"a"""', '"a"",""b"', '"a","b"c"', '"a", "b"', '"a" ,"b"',
    '"a","b","c""d"', '"a","b",c', '"a\tb","c"', '"x"' + ',"y"' * 30, '","', '"","",""', '"a""b","c"',
]


@pytest.mark.parametrize("line", ROWS)
def test_parse_row_gives_what_csv_gives(line: str) -> None:
    try:
        expected = list(csv.reader((line,), skipinitialspace=True, strict=True))
    except csv.Error:
        expected = None
    if expected is None or len(expected) != 1:
        with pytest.raises(ValueError):
            parse_row(line)
    else:
        assert parse_row(line) == expected[0]


ADDRESSES = ["0.0.0.0", "10.0.0.1", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1.2.3.4 ",
             " 1.2.3.4", "1.2.3.4\n", "+1.2.3.4", "1.2.3.-4", "١.٢.٣.٤", "1..2.3", "::1", "2001:db8::1",
             "::ffff:1.2.3.4", "fe80::1%eth0", "example.com", "", "1.2.3.0255", "99.100.199.249"]


@pytest.mark.parametrize("text", ADDRESSES)
def test_is_ip_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.ip_address(text)
        expected = True
    except ValueError:
        expected = False
    assert is_ip(text) is expected
