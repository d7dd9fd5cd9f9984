"""Exponential histograms: accumulation across scales, and classic buckets for exposition.

At scale ``s`` the base is ``2 ** (2 ** -s)``; positive bucket ``i`` holds values in
``(base**i, base**(i+1)]``, negative bucket ``i`` the same range below zero, and the zero
bucket ``[-zero_threshold, zero_threshold]``. Two histograms of different scales are added
after bringing the finer one down to the coarser scale (bucket ``i`` becomes ``i >> d``).
Prometheus text exposition has no native histograms, so they are exposed as classic
buckets, one ``le`` per populated exponential bucket's upper bound.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otterscope.metrics.accumulator import Series

Row = dict[str, Any]


def _downscale(offset: int, counts: list[int], by: int) -> tuple[int, list[int]]:
    if by <= 0 or not counts:
        return offset, list(counts)
    first = offset >> by
    out = [0] * (((offset + len(counts) - 1) >> by) - first + 1)
    for i, c in enumerate(counts):
        out[((offset + i) >> by) - first] += c
    return first, out


def _add_buckets(a_offset: int, a: list[int], b_offset: int, b: list[int]) -> tuple[int, list[int]]:
    if not a:
        return b_offset, list(b)
    if not b:
        return a_offset, list(a)
    start = min(a_offset, b_offset)
    end = max(a_offset + len(a), b_offset + len(b))
    out = [0] * (end - start)
    for offset, counts in ((a_offset, a), (b_offset, b)):
        for i, c in enumerate(counts):
            out[offset - start + i] += c
    return start, out


def _row_buckets(row: Row) -> tuple[int, int, list[int], int, list[int]]:
    return (
        int(row["scale"] or 0),
        int(row["positive_offset"] or 0),
        [int(c) for c in row["positive_bucket_counts"] or ()],
        int(row["negative_offset"] or 0),
        [int(c) for c in row["negative_bucket_counts"] or ()],
    )


def take(s: Series, row: Row, fresh: bool) -> None:
    """A cumulative point: the latest replaces what the series held."""
    start = int(row["start_min"] or 0)
    if not fresh and start > s.start_ns:
        s.resets += 1
        s.start_ns = start
    s.scale, s.pos_offset, s.pos, s.neg_offset, s.neg = _row_buckets(row)
    s.zero_count = int(row["zero_count"] or 0)
    s.zero_threshold = float(row["zero_threshold"] or 0.0)
    s.count = int(row["count"] or 0)
    s.sum = float(row["sum"] or 0.0)
    s.min, s.max = row["min"], row["max"]
    s.time_ns = int(row["time_max"] or 0)


def add(s: Series, row: Row, fresh: bool) -> None:
    """A delta point: added bucket by bucket at the coarser of the two scales."""
    if fresh:
        take(s, row, True)
        return
    scale, pos_offset, pos, neg_offset, neg = _row_buckets(row)
    target = min(scale, s.scale)
    p1 = _downscale(s.pos_offset, s.pos, s.scale - target)
    n1 = _downscale(s.neg_offset, s.neg, s.scale - target)
    p2 = _downscale(pos_offset, pos, scale - target)
    n2 = _downscale(neg_offset, neg, scale - target)
    s.scale = target
    s.pos_offset, s.pos = _add_buckets(*p1, *p2)
    s.neg_offset, s.neg = _add_buckets(*n1, *n2)
    s.zero_count += int(row["zero_count"] or 0)
    s.zero_threshold = max(s.zero_threshold, float(row["zero_threshold"] or 0.0))
    s.count += int(row["count"] or 0)
    s.sum += float(row["sum"] or 0.0)
    lo, hi = row["min"], row["max"]
    s.min = lo if s.min is None else (s.min if lo is None else min(s.min, lo))
    s.max = hi if s.max is None else (s.max if hi is None else max(s.max, hi))
    s.time_ns = max(s.time_ns, int(row["time_max"] or 0))


def _power(scale: int, index: int) -> float:
    try:
        return float(2.0 ** (index / 2.0**scale))
    except OverflowError:
        return math.inf


def classic_buckets(s: Series) -> list[tuple[float, int]]:
    """(upper bound, count) in ascending order of bound, the last one +Inf."""
    out: list[tuple[float, int]] = []
    for i in range(len(s.neg) - 1, -1, -1):  # most negative first
        out.append((-_power(s.scale, s.neg_offset + i), s.neg[i]))
    out.append((s.zero_threshold, s.zero_count))
    out.extend((_power(s.scale, s.pos_offset + i + 1), c) for i, c in enumerate(s.pos))
    counted = sum(c for _, c in out)
    out.append((math.inf, max(0, s.count - counted)))
    return out
