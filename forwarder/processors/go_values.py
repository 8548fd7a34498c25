"""How Go prints a scalar with `%v`, for the processors whose output Filebeat derives from that text.

fingerprint hashes `|field|value` strings and convert turns numbers into
strings; to give the same hashes and strings as Filebeat, a float prints in
Go's shortest form (`1` not `1.0`, `1e+21` not `1e21`) and booleans in lower
case.
"""

from __future__ import annotations

from typing import Any


def go_text(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_text(value)
    return str(value)


def go_float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    exponent = f"{value:e}".split("e")[1]
    if -4 <= int(exponent) < 21:
        text = repr(value)
        if "e" not in text:
            return text[:-2] if text.endswith(".0") else text
        return f"{value:f}".rstrip("0").rstrip(".")
    mantissa, _, power = repr(value).partition("e")
    if not power:
        mantissa, _, power = f"{value:e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if power.startswith("-") else "+"
    digits = power.lstrip("+-").lstrip("0")
    return f"{mantissa.removesuffix('.0')}e{sign}{digits.zfill(2)}"
