"""Scalars of Pachyderm specs: integers, durations, cron, names, quantities."""

from __future__ import annotations

import pytest

from compiler.spec.checks import quantity_of
from compiler.spec.cron import cron_problem
from compiler.spec.names import k8s_name, lakefs_repo_name
from compiler.spec.values import parse_duration, parse_int


@pytest.mark.parametrize(("text", "seconds"), [
    ("300s", 300), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("250ms", 0.25), ("0", 0),
    ("2h45m30.5s", 9930.5), ("-1m", -60)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 minutes", "5", "m", "1d", "", "1h-5m", "."])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_proto_json_integers() -> None:
    assert parse_int("1") == 1
    assert parse_int(7.0) == 7
    assert parse_int(str(2**64 - 1), unsigned=True) == 2**64 - 1
    for bad in (True, 1.5, "1.0", "x", 2**63, None):
        with pytest.raises(ValueError):
            parse_int(bad)
    with pytest.raises(ValueError):
        parse_int(-1, unsigned=True)


@pytest.mark.parametrize("spec", ["@every 10s", "@daily", "*/10 * * * *", "0 3 * * MON-FRI",
                                  "0 0 12 1 1 *", "0 0 1,15 * ?", "0 0 * jan-mar sun"])
def test_good_cron(spec: str) -> None:
    assert cron_problem(spec) is None


@pytest.mark.parametrize(("spec", "problem"), [
    ("0 25 * * *", "hour 25 is out of range 0-23"),
    ("* * *", "a schedule has 5 fields"),
    ("@sometimes", "unknown descriptor '@sometimes'"),
    ("@every soon", "'soon' is not a duration"),
    ("*/0 * * * *", "zero step"),
    ("0 0 * foo *", "month field has unknown value 'foo'"),
    ("0 0 10-2 * *", "runs backwards")])
def test_bad_cron(spec: str, problem: str) -> None:
    assert problem in (cron_problem(spec) or "")


def test_names() -> None:
    assert lakefs_repo_name("raw_data") == "raw-data"
    assert lakefs_repo_name("Images") == "images"
    assert lakefs_repo_name("in") == "in-repo"
    assert lakefs_repo_name("_x") == "x-repo"
    assert k8s_name("raw__Data") == "raw-data"
    assert k8s_name("1st") == "p-1st"
    assert quantity_of("256MB") == "256M"
    assert quantity_of("1gib") == "1Gi"
