"""Exponential histograms added across scales, checked against counting the values."""

from __future__ import annotations

import math
import random

from otterscope.metrics.accumulator import EXP_HISTOGRAM, Series
from otterscope.metrics.exponential import add, classic_buckets


def _index(value: float, scale: int) -> int:
    # Bucket i holds (base**i, base**(i+1)] with base = 2 ** (2 ** -scale).
    return math.ceil(math.log2(value) * 2**scale) - 1


def _row(values: list[float], scale: int) -> dict[str, object]:
    pos = [v for v in values if v > 0]
    neg = [-v for v in values if v < 0]
    row: dict[str, object] = {
        "scale": scale,
        "zero_count": sum(1 for v in values if v == 0),
        "zero_threshold": 0.0,
        "count": len(values),
        "sum": sum(values),
        "min": min(values),
        "max": max(values),
        "start_min": 1,
        "time_max": 2,
    }
    for side, vals in (("positive", pos), ("negative", neg)):
        idx = [_index(v, scale) for v in vals] or [0]
        lo = min(idx)
        counts = [0] * (max(idx) - lo + 1)
        for i in (_index(v, scale) for v in vals):
            counts[i - lo] += 1
        row[f"{side}_offset"], row[f"{side}_bucket_counts"] = lo, counts if vals else []
    return row


def test_adding_at_different_scales_keeps_every_value_in_its_bucket() -> None:
    rng = random.Random(7)
    a = [rng.choice([-1, 1]) * rng.uniform(0.01, 1000) for _ in range(300)] + [0.0]
    b = [rng.choice([-1, 1]) * rng.uniform(0.01, 1000) for _ in range(200)]
    s = Series("t", "{}", "", "", "m", EXP_HISTOGRAM, False, "{}")
    add(s, _row(a, 3), fresh=True)
    add(s, _row(b, 1), fresh=False)
    assert s.scale == 1 and s.count == 501
    values = sorted(a + b)
    lower = -math.inf
    for bound, count in classic_buckets(s):
        assert count == sum(1 for v in values if lower < v <= bound), (bound, count)
        lower = bound
