"""Fixed, geometric buckets of durations: medians and percentiles over any range are computed
from how many durations fell in each bucket, never from the raw cases.

Bucket 0 holds everything under a minute; bucket i (i >= 1) holds [60 * R^(i-1), 60 * R^i)
seconds with R = 1.15, up to about two years (the last bucket holds anything longer). A
percentile is interpolated inside its bucket, so it is off by less than one bucket's width: at
most 15% of the true value (and under a minute for very short ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RATIO = 1.15
FIRST = 60.0
LAST = 120  # 60 * 1.15^120 is about 35 years: nothing realistic reaches it


def bucket_of(seconds: float) -> int:
    if seconds < FIRST:
        return 0
    return min(LAST, 1 + int(math.log(seconds / FIRST) / math.log(RATIO)))


def bounds(bucket: int) -> tuple[float, float]:
    """The seconds a bucket covers, [low, high)."""
    if bucket == 0:
        return 0.0, FIRST
    return FIRST * RATIO ** (bucket - 1), FIRST * RATIO**bucket


def percentile(counts: Mapping[int, int], share: float = 0.5) -> float | None:
    """The duration below which `share` of the counted durations fall (None when none)."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = share * total
    seen = 0
    for bucket in sorted(counts):
        n = counts[bucket]
        if n <= 0:
            continue
        if seen + n >= rank:
            low, high = bounds(bucket)
            return low + (high - low) * max(0.0, rank - seen) / n
        seen += n
    return bounds(max(counts))[1]
