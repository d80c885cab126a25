"""Statistics for ``python -m bench compare``: is CURRENT really slower than BASELINE?

The rule (asv's, applied to the raw samples this tool keeps):

- ``ratio = median(current) / median(baseline)`` of the raw per-step times (seconds; any unit
  works as long as both sides use the same one).
- ``p`` is the two-sided Mann–Whitney U p-value of the two sample sets.
- **slower** iff ``ratio > factor`` **and** ``p < alpha``;
  **faster** iff ``ratio < 1 / factor`` **and** ``p < alpha``; otherwise **same**.

Both conditions matter: a tiny but consistent difference is significant yet not worth a
failure (the factor), and a large difference in a noisy pair of runs may be chance (alpha).
With fewer than ``min_samples`` samples on either side nothing can be called significant: the
verdict is **same** with the note ``too few samples``. Without raw samples at all (a
pytest-benchmark file saved without ``--benchmark-save-data``) only the factor can be applied:
:func:`ratio_verdict`, with the note ``no raw samples: ratio only``.

The confidence interval of the ratio is a percentile bootstrap: both sample sets are
resampled with replacement ``n_boot`` times, vectorised in NumPy, with a fixed seed so that the
same inputs always give the same interval. It is reported, not used by the verdict.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sp

#: default slowdown factor: a row is ``slower`` only when its median grew by more than 10%.
DEFAULT_FACTOR = 1.10
#: default significance level of the Mann–Whitney U test.
DEFAULT_ALPHA = 0.01
#: below this many samples on either side a difference is never called significant.
DEFAULT_MIN_SAMPLES = 5

SLOWER, FASTER, SAME = "slower", "faster", "same"

#: bootstrap work is done in chunks of at most this many resampled values (memory bound).
_CHUNK_VALUES = 2_000_000

ArrayLike = Sequence[float] | np.ndarray


def as_samples(values: ArrayLike | None) -> np.ndarray:
    """Finite values of ``values`` as a float64 array (empty for ``None``)."""
    if values is None:
        return np.empty(0)
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _bootstrap_medians(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n_boot`` resamples (with replacement) of ``x``, shape ``(n_boot,)``."""
    n = x.size
    out = np.empty(n_boot)
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = np.median(x[idx], axis=1)
    return out


def median_ratio_ci(
    base_samples: ArrayLike,
    cur_samples: ArrayLike,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians ``median(cur) / median(base)`` with a bootstrap confidence interval.

    Args:
      base_samples: raw times of the baseline (seconds).
      cur_samples: raw times of the current run (same unit).
      n_boot: bootstrap resamples of each side.
      confidence: coverage of the percentile interval, e.g. 0.95.
      seed: seed of the NumPy generator; equal inputs give equal intervals.

    Returns:
      ``(ratio, low, high)``, dimensionless. NaN when a side has no samples or a median of 0.
    """
    base, cur = as_samples(base_samples), as_samples(cur_samples)
    if base.size == 0 or cur.size == 0:
        return (math.nan, math.nan, math.nan)
    mb, mc = float(np.median(base)), float(np.median(cur))
    if mb <= 0:
        return (math.nan, math.nan, math.nan)
    ratio = mc / mb
    if n_boot < 1:
        return (ratio, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boot_base = _bootstrap_medians(base, n_boot, rng)
    boot_cur = _bootstrap_medians(cur, n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_cur / boot_base
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return (ratio, math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return (ratio, float(low), float(high))


def median_interval(
    samples: ArrayLike, *, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Median of one sample set with a distribution-free confidence interval and its exact
    coverage.

    The interval is between two order statistics picked from the binomial distribution
    ``Bin(n, 1/2)`` (no bootstrap, no normality assumption): the narrowest whose coverage is at
    least ``confidence``. With too few samples for that (5 or fewer at 95%) it is the whole
    range of the samples, and its coverage is less (93.75% for 5 samples): the fourth value
    says how much.

    Returns:
      ``(median, low, high, level)``: the first three in the unit of ``samples``, ``level``
      the probability that the interval holds the true median; NaN for no samples.
    """
    x = np.sort(as_samples(samples))
    n = x.size
    if n == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    med = float(np.median(x))
    tail = (1.0 - confidence) / 2.0
    lo_rank = int(_sp.binom.ppf(tail, n, 0.5))  # 0-based index of the low order statistic
    # ppf may land one rank too far inside: widen until the coverage holds.
    while lo_rank > 0 and _coverage(n, lo_rank) < confidence:
        lo_rank -= 1
    if lo_rank >= n - 1 - lo_rank or _coverage(n, lo_rank) < confidence:
        lo_rank = 0
    if n == 1:
        return (med, float(x[0]), float(x[0]), 0.0)
    return (med, float(x[lo_rank]), float(x[n - 1 - lo_rank]), _coverage(n, lo_rank))


def median_ci(samples: ArrayLike, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)`` of :func:`median_interval`."""
    return median_interval(samples, confidence=confidence)[:3]


#: fewest samples whose whole range covers the median with 95%: 1 - 2 * 0.5**6 = 96.9%
MIN_SAMPLES_95 = 6


def _coverage(n: int, lo_rank: int) -> float:
    """P(x[lo_rank] <= median <= x[n-1-lo_rank]) for n samples of a continuous distribution."""
    return float(_sp.binom.cdf(n - 1 - lo_rank, n, 0.5) - _sp.binom.cdf(lo_rank, n, 0.5))


def mann_whitney_p(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided Mann–Whitney U p-value of two sample sets (NaN when a side is empty)."""
    x, y = as_samples(a), as_samples(b)
    if x.size == 0 or y.size == 0:
        return math.nan
    p = float(_sp.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


def ratio_verdict(ratio: float, factor: float) -> str:
    """Verdict from a ratio alone (no samples): slower above ``factor``, faster below its inverse."""
    if not math.isfinite(ratio):
        return SAME
    if ratio > factor:
        return SLOWER
    if ratio < 1.0 / factor:
        return FASTER
    return SAME


@dataclasses.dataclass(frozen=True)
class SampleComparison:
    """Outcome of comparing two sample sets; times in the unit of the samples (seconds).

    Attributes:
      base_median: median of the baseline samples.
      cur_median: median of the current samples.
      ratio: ``cur_median / base_median``.
      ci_low: low end of the bootstrap interval of the ratio.
      ci_high: high end.
      p: two-sided Mann–Whitney U p-value.
      n_base: baseline samples used.
      n_cur: current samples used.
      verdict: ``slower``, ``faster`` or ``same``.
      note: why the verdict is weaker than it looks (``too few samples``), or ``""``.
    """

    base_median: float
    cur_median: float
    ratio: float
    ci_low: float
    ci_high: float
    p: float
    n_base: int
    n_cur: int
    verdict: str
    note: str = ""


def compare_samples(
    base: ArrayLike,
    cur: ArrayLike,
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> SampleComparison:
    """Apply the module's rule to two sample sets; see the module docstring.

    Args:
      base: baseline raw times (seconds).
      cur: current raw times (seconds).
      factor: ratio above which (or below whose inverse) a significant change counts.
      alpha: significance level of the Mann–Whitney U test.
      min_samples: fewest samples per side for a difference to count.
      n_boot: bootstrap resamples for the interval.
      confidence: coverage of the interval.
      seed: bootstrap seed.
    """
    b, c = as_samples(base), as_samples(cur)
    ratio, low, high = median_ratio_ci(b, c, n_boot=n_boot, confidence=confidence, seed=seed)
    p = mann_whitney_p(b, c)
    bm = float(np.median(b)) if b.size else math.nan
    cm = float(np.median(c)) if c.size else math.nan
    note = ""
    if b.size < min_samples or c.size < min_samples:
        v = SAME
        note = f"too few samples ({b.size} vs {c.size}; need {min_samples} a side)"
    elif not math.isfinite(ratio) or not math.isfinite(p) or p >= alpha:
        v = SAME
    elif ratio > factor:
        v = SLOWER
    elif ratio < 1.0 / factor:
        v = FASTER
    else:
        v = SAME
    return SampleComparison(bm, cm, ratio, low, high, p, int(b.size), int(c.size), v, note)


def verdict(
    base: ArrayLike,
    cur: ArrayLike,
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> str:
    """``slower``, ``faster`` or ``same`` for two sample sets (see the module docstring).

    :func:`compare_samples` gives the numbers and the note behind the verdict.
    """
    return compare_samples(base, cur, factor, alpha, min_samples, n_boot=0).verdict
