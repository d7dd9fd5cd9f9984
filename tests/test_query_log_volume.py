"""The log volume histogram's step choice, bucket arithmetic and answer shape, as pure
functions (the endpoint itself is tested against a real server in test_api_log_volume)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otterscope.errors import BadRequest
from otterscope.query import log_volume as lv

MS = 1_000_000
SECOND = 1000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_700_000_000 * SECOND  # 2023-11-14T22:13:20Z


def test_the_nice_steps_are_the_documented_ones() -> None:
    names = [
        "1s",
        "2s",
        "5s",
        "10s",
        "15s",
        "30s",
        "1m",
        "2m",
        "5m",
        "10m",
        "15m",
        "30m",
        "1h",
        "2h",
        "3h",
        "6h",
        "12h",
        "24h",
    ]
    assert [lv._duration(ms) for ms in lv.NICE_STEPS_MS] == names


@pytest.mark.parametrize(
    ("window", "step"),
    [
        (0, SECOND),
        (30 * SECOND, SECOND),
        (HOUR, MINUTE),
        (6 * HOUR, 10 * MINUTE),
        (DAY, 30 * MINUTE),
        (7 * DAY, 3 * HOUR),
        (30 * DAY, 12 * HOUR),
        (59 * DAY, DAY),
        (365 * DAY, 7 * DAY),
    ],
)
def test_default_steps_for_common_windows(window: int, step: int) -> None:
    # An aligned start (an hour's, a day's) as a time picker's presets give.
    start = T0 - T0 % DAY
    assert lv.default_step_ns(start, start + window) == step


@given(
    start=st.integers(0, 2**62),
    window=st.integers(0, 200 * 365 * DAY),
)
def test_a_default_step_is_the_smallest_nice_one_near_sixty_buckets(
    start: int, window: int
) -> None:
    end = min(start + window, 2**63 - 1)
    step = lv.default_step_ns(start, end)
    count = lv.bucket_span(start, end, step)[1]
    assert count <= lv.DEFAULT_BUCKETS + 2 <= lv.MAX_BUCKETS
    if step // MS in lv.NICE_STEPS_MS:
        smaller = [s for s in lv.NICE_STEPS_MS if s * MS < step]
        assert all(lv.bucket_span(start, end, s * MS)[1] > lv.DEFAULT_BUCKETS + 1 for s in smaller)
    else:
        assert step % DAY == 0 and step > DAY


def test_buckets_are_aligned_to_the_epoch() -> None:
    start, end = T0 + 7 * SECOND, T0 + 3 * MINUTE
    first, count = lv.bucket_span(start, end, MINUTE)
    assert first * MINUTE <= start < (first + 1) * MINUTE
    assert (first + count - 1) * MINUTE <= end < (first + count) * MINUTE


@pytest.mark.parametrize(
    ("value", "step"),
    [("1m", MINUTE), ("1.5s", 1500 * MS), ("250", 250 * MS), ("1h30m", 90 * MINUTE)],
)
def test_parse_step(value: str, step: int) -> None:
    assert lv.parse_step(value, T0, T0 + MINUTE) == step


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0", "1ms or more"),
        ("0.5", "whole number of milliseconds"),
        ("1500us", "whole number of milliseconds"),
        ("later", "not a duration"),
        ("1s", "3601 buckets, more than 1000: use a step of 5s or more"),
        ("100ms", "use a step of 5s or more"),
    ],
)
def test_bad_steps(value: str, needle: str) -> None:
    with pytest.raises(BadRequest) as caught:
        lv.parse_step(value, T0 - T0 % HOUR, T0 - T0 % HOUR + HOUR)
    assert needle in str(caught.value)


def test_a_window_no_nice_step_fits_asks_for_a_longer_step() -> None:
    with pytest.raises(BadRequest, match="use a longer step, or a shorter window"):
        lv.parse_step("1h", 0, 5000 * DAY)


def test_the_answer_has_every_bucket_and_class() -> None:
    start, end = T0 + 10 * SECOND, T0 + 4 * MINUTE
    first = start // MINUTE
    rows = [
        {"step": first, "severity_class": 3, "records": 4},
        {"step": first, "severity_class": 0, "records": 1},
        {"step": first + 2, "severity_class": 6, "records": 2},
        {"step": first + 2, "severity_class": 5, "records": 7},
    ]
    got = lv.volume_to_api(rows, start, end, MINUTE)
    zero = dict.fromkeys(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNSPECIFIED"], 0)
    assert list(got) == ["stepMs", "startUnixMs", "endUnixMs", "buckets", "total"]
    assert got["stepMs"] == 60_000
    assert got["startUnixMs"] == first * 60_000
    assert got["endUnixMs"] == end // MS
    assert [b["timeUnixMs"] for b in got["buckets"]] == [(first + i) * 60_000 for i in range(5)]
    assert [b["counts"] for b in got["buckets"]] == [
        {**zero, "INFO": 4, "UNSPECIFIED": 1},
        zero,
        {**zero, "FATAL": 2, "ERROR": 7},
        zero,
        zero,
    ]
    assert list(got["buckets"][0]["counts"]) == list(zero)
    assert [b["total"] for b in got["buckets"]] == [5, 0, 9, 0, 0]
    assert got["total"] == 14
