"""Parsing of the query-string conventions shared by every endpoint (SPEC §5)."""

from __future__ import annotations

import pytest

from otterscope.errors import BadRequest
from otterscope.query import params as p


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("2m", 120_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("7ns", 7),
        (".5s", 500_000_000),
        ("250", 250_000_000),
        ("0.5", 500_000),
    ],
)
def test_go_durations_and_plain_milliseconds(text: str, ns: int) -> None:
    assert p.parse_duration("d", text) == ns


@pytest.mark.parametrize("text", ["", "fast", "5 s", "-3", "1e300", "3d", "1h-5m", "nan", "inf"])
def test_bad_durations_are_bad_requests(text: str) -> None:
    with pytest.raises(BadRequest) as err:
        p.parse_duration("minDuration", text)
    assert "minDuration" in err.value.message


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1700000000", 1_700_000_000 * 10**9),
        ("1700000000000", 1_700_000_000 * 10**9),
        ("1700000000000000", 1_700_000_000 * 10**9),
        ("1700000000000000000", 1_700_000_000 * 10**9),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000 * 10**9),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000 * 10**9 + 500_000_000),
        # Every digit of the fraction is kept, down to nanoseconds.
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000 * 10**9 + 123_456_789),
        ("2023-11-14T23:13:20,000000001+01:00", 1_700_000_000 * 10**9 + 1),
        ("1969-12-31T23:59:59Z", None),
    ],
)
def test_times_unix_by_size_or_rfc3339(text: str, ns: int | None) -> None:
    if ns is None:
        with pytest.raises(BadRequest, match="1970"):
            p.parse_time("start", text)
    else:
        assert p.parse_time("start", text) == ns


def test_trace_and_span_ids() -> None:
    assert p.parse_trace_id("D269B633813FC60C") == bytes(8) + bytes.fromhex("d269b633813fc60c")
    with pytest.raises(BadRequest):
        p.parse_trace_id("xyz")
    with pytest.raises(BadRequest):
        p.parse_span_id("d269b633813fc60")


def test_the_default_window_never_starts_before_the_epoch() -> None:
    # `end=66` is 66 seconds after the epoch: a day back would be a negative time, which
    # no answer (log volume buckets, cursors) can carry.
    assert p.time_window({"end": "66"}) == (0, 66 * 10**9)
    assert p.time_window({"end": "2024-05-01T00:00:00Z"})[0] > 0
