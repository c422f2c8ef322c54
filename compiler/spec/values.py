"""Scalar conventions of Pachyderm specs: proto-JSON integers, Go durations."""

from __future__ import annotations

import re

INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                 "m": 60.0, "h": 3600.0}


def parse_int(value: object, *, unsigned: bool = False) -> int:
    """A proto-JSON 64-bit integer: a JSON number or a string of digits (`"constant": "1"`)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a whole number, not {value}")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?[0-9]+", text):
            raise ValueError(f"must be a whole number, not {value!r}")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError("must be a whole number")
    low, high = (0, UINT64_MAX) if unsigned else (-INT64_MAX - 1, INT64_MAX)
    if not low <= value <= high:
        kind = "an unsigned 64-bit" if unsigned else "a 64-bit"
        raise ValueError(f"{value} does not fit in {kind} integer")
    return value


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (`5m`, `1h30m`, `1.5s`) or a proto-JSON one (`300s`).

    Pachyderm 1.x parsed these with Go's time.ParseDuration, 2.x with protojson (seconds with an
    `s` suffix, a subset of Go's syntax); both are accepted.
    """
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    while pos < len(s):
        m = _GO_DURATION.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(
                f"{text!r} is not a duration; write it like 30s, 5m, 1h30m or 300s")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return sign * total
