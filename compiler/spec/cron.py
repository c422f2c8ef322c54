"""Cron expressions as Pachyderm's cron inputs accept them (robfig/cron)."""

from __future__ import annotations

import re

from compiler.spec.values import parse_duration

DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                         "@hourly"})
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, low, high, names) of the five standard fields; an optional sixth, leading, field
# holds seconds.
_Field = tuple[str, int, int, dict[str, int]]
_FIELDS: tuple[_Field, ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_SECONDS: _Field = ("second", 0, 59, {})
_ITEM = re.compile(r"(\*|\?|[0-9a-z]+)(?:-([0-9a-z]+))?(?:/([0-9]+))?")


def cron_problem(spec: str) -> str | None:
    """None when `spec` is a valid schedule, else what is wrong with it.

    Accepted: five fields (minute hour day-of-month month day-of-week), six with leading
    seconds (robfig/cron's optional-seconds parser used by Pachyderm 1.x), the `@daily`-style
    descriptors, and `@every <duration>`.
    """
    text = spec.strip()
    if not text:
        return "the schedule is empty"
    if text.startswith("@"):
        if text.lower() in DESCRIPTORS:
            return None
        if text.lower().startswith("@every "):
            try:
                seconds = parse_duration(text[len("@every "):])
            except ValueError as exc:
                return str(exc)
            return None if seconds > 0 else "@every needs a positive duration"
        return (f"unknown descriptor {text.split()[0]!r}; use one of "
                f"{', '.join(sorted(DESCRIPTORS))} or @every <duration>")
    parts = text.split()
    fields: tuple[_Field, ...]
    if len(parts) == 5:
        fields = _FIELDS
    elif len(parts) == 6:
        fields = (_SECONDS, *_FIELDS)
    else:
        return (f"a schedule has 5 fields (minute hour day-of-month month day-of-week), "
                f"not {len(parts)}")
    for part, (name, low, high, names) in zip(parts, fields, strict=True):
        problem = _field_problem(part.lower(), name, low, high, names)
        if problem:
            return problem
    return None


def _field_problem(part: str, name: str, low: int, high: int,
                   names: dict[str, int]) -> str | None:
    for item in part.split(","):
        m = _ITEM.fullmatch(item)
        if not m:
            return f"{name} field {item!r} is not a number, range, list or step"
        start, end, step = m.groups()
        if step is not None and int(step) == 0:
            return f"{name} field {item!r} has a zero step"
        if start in ("*", "?"):
            if end is not None:
                return f"{name} field {item!r}: a range cannot start with {start!r}"
            continue
        values = []
        for token in (start, end):
            if token is None:
                continue
            number = names.get(token) if not token.isdigit() else int(token)
            if number is None:
                return f"{name} field has unknown value {token!r}"
            if not low <= number <= high:
                return f"{name} {number} is out of range {low}-{high}"
            values.append(number)
        if len(values) == 2 and values[0] > values[1]:
            return f"{name} range {item!r} runs backwards"
    return None
