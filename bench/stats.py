"""Statistics for ``python -m bench compare`` and ``bench ab``: is CURRENT really slower than
BASELINE?

**The unit of evidence is the pass** (one worker process measuring the configurations once),
not the sample. The samples of one measurement cannot show what differs between processes and
moments (a worker placed on a busier core, another memory layout, a sub-second slow spell of a
shared host): on a 2-core machine two passes of the same code differ per configuration by a log
ratio of spread 0.10 (x0.85-x1.18 from the 5th to the 95th percentile, tails beyond x2), while
the samples of each agree to a few percent, so a test over samples finds "significant"
differences between identical kernels (:func:`compare_passes`):

- **paired** passes (``bench ab``: in pass *i* both sides measured the configuration back to
  back): the per-pass log ratios ``d_i = log(cur_i / base_i)``, a one-sample t test of their
  mean, the ratio ``exp(mean d)`` with its t interval. A few passes estimate their own spread
  poorly, and the spread between processes is largely the machine's: the variance is
  *moderated* (Smyth's empirical Bayes, as limma does for thousands of genes) towards a prior
  fitted to every configuration's passes (:func:`fit_prior`), ``s~^2 = (d0 s0^2 + d s^2) /
  (d0 + d)`` with ``d0 + d`` degrees of freedom; how much it borrows (``d0``) is itself fitted
  from how much the configurations' spreads differ. Borrowing never narrows a configuration
  noisier than its family: where its own variance is the larger (a slow spell among its
  passes), it is judged on its own, with its own degrees of freedom;
- **separate** runs (``bench run --repeats N`` on each side): Welch's t test of the log pass
  medians (a side with one pass borrows the other side's spread).

With one pass a side there is no process-level evidence at all: no p-value, no verdict.

**Many configurations, one verdict**: a run compares dozens to hundreds of configurations, so
the p-values are judged together by Holm's step-down rule (:func:`holm`), which keeps the chance
that *any* configuration of an A/A run is called slower at or below ``alpha``.

The sample-level figures shown beside each verdict (:func:`compare_samples`, asv's rule on the
raw samples) decide nothing any more but one thing: with fewer than ``min_samples`` samples on
either side a row is not judged (``too few samples``):

- ``ratio = median(current) / median(baseline)`` of the raw per-step times (seconds);
- ``p``, the two-sided Mann–Whitney U p-value of the two sample sets;
- its own verdict: slower iff ``ratio > factor`` and ``p < alpha`` (what ``compare`` judged by
  before the passes; kept for the tests that show why it cries wolf).

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
#: default significance level: of the Mann–Whitney U test of one sample set, and family-wise (the
#: chance that any configuration of a comparison of identical code is called slower) for passes.
DEFAULT_ALPHA = 0.05
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


@dataclasses.dataclass(frozen=True)
class PassComparison:
    """Process-level comparison of one configuration (see the module docstring).

    Attributes:
      ratio: ``cur / base``: the geometric mean of the per-pass ratios (paired) or of the pass
        medians' geometric means (separate runs); NaN without passes on a side.
      ci_low: low end of the t interval of the ratio (NaN: too few passes).
      ci_high: high end.
      p_slower: one-sided p-value of "CURRENT is slower" (H0: ratio <= 1); NaN: too few passes.
      p_faster: one-sided p-value of "CURRENT is faster".
      n_base: passes of BASELINE used.
      n_cur: passes of CURRENT used.
      paired: whether the passes were paired.
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_slower: float
    p_faster: float
    n_base: int
    n_cur: int
    paired: bool

    @property
    def testable(self) -> bool:
        return math.isfinite(self.p_slower)


def _logs(values: ArrayLike) -> np.ndarray:
    x = as_samples(values)
    return np.log(x[x > 0])


def log_ratios(base: Sequence[float | None], cur: Sequence[float | None]) -> np.ndarray:
    """``log(cur_i / base_i)`` of the pairs where both passes ran."""
    pairs = [
        (b, c)
        for b, c in zip(base, cur, strict=False)
        if b is not None and c is not None and b > 0 and c > 0
    ]
    return np.log([c / b for b, c in pairs]) if pairs else np.empty(0)


#: the prior's degrees of freedom are capped: however alike the configurations look, each keeps
#: a share of its own evidence (and configurations measured in the same processes share their
#: processes' noise, so they are less independent than the fit assumes)
MAX_PRIOR_DF = 20.0


def fit_prior(variances: Sequence[float], dfs: Sequence[float]) -> tuple[float, float]:
    """The prior ``(d0, s0^2)`` of the per-configuration variances: Smyth's (2004) moment fit of
    a scaled F distribution to the sample variances ``variances`` with ``dfs`` degrees of freedom
    each (limma's ``fitFDist``). ``d0`` is 0 (no borrowing) with fewer than 3 usable variances;
    large when the configurations' variances differ no more than chance makes them."""
    from scipy.special import digamma, polygamma

    s2, d = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    ok = np.isfinite(s2) & (s2 > 0) & np.isfinite(d) & (d > 0)
    if ok.sum() < 3:
        return 0.0, math.nan
    s2, d = s2[ok], d[ok]
    e = np.log(s2) - digamma(d / 2) + np.log(d / 2)
    emean = float(e.mean())
    evar = float(e.var(ddof=1) - np.mean(polygamma(1, d / 2)))
    d0 = MAX_PRIOR_DF if evar <= 0 else min(MAX_PRIOR_DF, 2 * _trigamma_inverse(evar))
    return d0, float(math.exp(emean + digamma(d0 / 2) - math.log(d0 / 2)))


def _trigamma_inverse(x: float) -> float:
    """``y`` with ``trigamma(y) = x`` (limma's Newton iteration)."""
    from scipy.special import polygamma

    if x > 1e7:
        return 1 / math.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(polygamma(1, y))
        dif = tri * (1 - tri / x) / float(polygamma(2, y))
        y += dif
        if -dif / y < 1e-8:
            break
    return y


def compare_passes(
    base: Sequence[float | None],
    cur: Sequence[float | None],
    *,
    paired: bool,
    confidence: float = 0.95,
    prior: tuple[float, float] | None = None,
) -> PassComparison:
    """Compare two configurations' pass medians (seconds) process by process.

    Args:
      base: BASELINE's pass medians; ``None`` for a pass that failed.
      cur: CURRENT's; with ``paired`` the same length, ``cur[i]`` measured beside ``base[i]``.
      paired: pair the passes by index (``bench ab``) or treat the sides as separate runs.
      confidence: coverage of the ratio's interval.
      prior: ``(d0, s0^2)`` of :func:`fit_prior` (paired only): the variance of the log ratios
        is moderated towards ``s0^2`` with ``d0`` degrees of freedom of its own.
    """
    nan = math.nan
    if paired:
        d = log_ratios(base, cur)
        n = int(d.size)
        if n == 0:
            return PassComparison(nan, nan, nan, nan, nan, 0, 0, True)
        mean = float(d.mean())
        d0, s0sq = prior if prior is not None and prior[0] > 0 else (0.0, 0.0)
        if n < 2 and d0 <= 0:
            return PassComparison(math.exp(mean), nan, nan, nan, nan, n, n, True)
        own = float(d.var(ddof=1)) if n >= 2 else 0.0
        df = d0 + n - 1
        var = (d0 * s0sq + (n - 1) * own) / df
        if n >= 2 and own > var:  # noisier than its family (a slow spell, outliers): its own
            var, df = own, n - 1
        return _t_result(mean, math.sqrt(var / n), df, n, n, True, confidence)
    lb, lc = _logs([b for b in base if b is not None]), _logs([c for c in cur if c is not None])
    nb, nc = int(lb.size), int(lc.size)
    if nb == 0 or nc == 0:
        return PassComparison(nan, nan, nan, nan, nan, nb, nc, False)
    mean = float(lc.mean() - lb.mean())
    if nb < 2 and nc < 2:
        return PassComparison(math.exp(mean), nan, nan, nan, nan, nb, nc, False)
    vb = float(lb.var(ddof=1)) if nb >= 2 else None
    vc = float(lc.var(ddof=1)) if nc >= 2 else None
    if vb is None or vc is None:  # one side of one pass: the other side's spread for both
        v, df = (vb if vc is None else vc), (nb if vc is None else nc) - 1
        se = math.sqrt(v * (1 / nb + 1 / nc))
    else:
        qb, qc = vb / nb, vc / nc
        se = math.sqrt(qb + qc)
        denom = qb**2 / (nb - 1) + qc**2 / (nc - 1)
        df = (qb + qc) ** 2 / denom if denom > 0 else nb + nc - 2
    return _t_result(mean, se, df, nb, nc, False, confidence)


def _t_result(
    mean: float, se: float, df: float, nb: int, nc: int, paired: bool, confidence: float
) -> PassComparison:
    if se <= 0.0:  # every pass agrees exactly: a difference is certain, none is impossible
        p_slow = 0.0 if mean > 0 else 1.0
        p_fast = 0.0 if mean < 0 else 1.0
        r = math.exp(mean)
        return PassComparison(r, r, r, p_slow, p_fast, nb, nc, paired)
    t = mean / se
    half = float(_sp.t.ppf(0.5 + confidence / 2.0, df)) * se
    return PassComparison(
        math.exp(mean),
        math.exp(mean - half),
        math.exp(mean + half),
        float(_sp.t.sf(t, df)),
        float(_sp.t.cdf(t, df)),
        nb,
        nc,
        paired,
    )


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (the same order; NaN stays NaN, and is not counted).

    A configuration is significant at family-wise level ``alpha`` when its adjusted p-value is
    below ``alpha``: the chance that any true null (an unchanged kernel) is rejected is then at
    most ``alpha``, whatever the dependence between the tests.
    """
    p = [float(x) for x in pvalues]
    idx = sorted((i for i, x in enumerate(p) if math.isfinite(x)), key=lambda i: p[i])
    m = len(idx)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
