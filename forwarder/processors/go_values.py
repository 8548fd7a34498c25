"""How Go prints a scalar with `%v`, for the processors whose output Filebeat derives from that text.

fingerprint hashes `|field|value` strings and convert turns numbers into
strings; to give the same hashes and strings as Filebeat, a float prints in
Go's shortest form (`1` not `1.0`, `1e+21` not `1e21`), booleans in lower
case, and a time as Go's time.Time prints itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
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


def go_utc_time_text(epoch_seconds: float) -> str:
    """Go's `%v` of a UTC time.Time: `2023-11-14 22:13:20.5 +0000 UTC` (fraction without trailing zeros)."""
    whole, micros = divmod(round(epoch_seconds * 1_000_000), 1_000_000)
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
    fraction = f"{micros:06d}".rstrip("0")
    return f"{text}.{fraction} +0000 UTC" if fraction else f"{text} +0000 UTC"
