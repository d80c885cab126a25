"""Step detection over a configuration's history: where did its time change, and by how much?

The model is asv's (``asv/step_detect.py``): a series is piecewise constant plus noise, and each
point's noise is proportional to its own measured uncertainty. Here the series is the log of one
figure (step time or cold compile time) at each commit, in commit order; each commit's point is
the median of its runs, and its uncertainty comes from the runs' confidence intervals.

1. **Weights**: a point's interval gives its relative weight (``1 / half-width``, normalised to
   a median of 1, clipped to [1/4, 4] because a run's interval comes from samples within one
   process and cannot show the process-to-process noise that dominates on shared machines).
2. **Noise level**: estimated from the series itself, robustly (the median absolute difference
   of neighbouring points, which a few steps hardly move), and never below the points' own
   interval half-widths nor :data:`MIN_SIGMA`.
3. **Fit**: the exact penalised weighted-L1 fit (dynamic programming over every segmentation;
   Friedrich et al. 2008, as asv) minimising ``sum_i w_i |y_i - mu_seg(i)| / b + penalty * k`` with
   ``b`` the Laplace scale of the noise and ``penalty = BETA * ln(n)`` a Schwarz-type cost a
   step, ``BETA`` chosen so that a series of pure noise gets a false step in well under 1% of
   series (tests/bench/history/test_steps.py measures it).
4. **Each step's size**: the ratio of the weighted medians after and before, with an interval
   from the noise level and the segments' weights (the standard error of a weighted median,
   ``sigma * sqrt(pi / 2) / sqrt(sum w^2)``). A step whose interval holds 1 is not reported.

A series of 100 commits fits in about 50 ms; longer ones are cut to the newest
:data:`MAX_POINTS`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

#: Schwarz-type penalty a step, in units of ln(n), of the first fit (see the module docstring).
BETA = 3.0
#: the chance that a series of pure noise is given a step anywhere (after pruning).
ALPHA = 0.01
#: the smallest noise level (relative, as a log difference) a series is assumed to have.
MIN_SIGMA = 0.005
#: the longest series fitted (the newest points are kept).
MAX_POINTS = 100
#: z of the two-sided 95% interval reported with each step.
Z95 = 1.959963984540054
WEIGHT_CLIP = 4.0


@dataclass(frozen=True)
class Step:
    """A change between two segments: ``index`` is the first point of the new level."""

    index: int
    ratio: float  # after / before (> 1: slower)
    ratio_low: float
    ratio_high: float
    before: float  # the figure's level before (seconds)
    after: float  # and after

    @property
    def slower(self) -> bool:
        return self.ratio > 1.0


@dataclass(frozen=True)
class Newest:
    """The newest commit against the level before it: its ratio and the one-sided p-value
    that it is slower by chance (the check's test; :func:`newest_test`)."""

    ratio: float
    p_slower: float


@dataclass(frozen=True)
class Fit:
    """A fitted series: its segments (``[start, stop)`` index pairs), levels and steps."""

    segments: list[tuple[int, int]]
    levels: list[float]  # each segment's level (seconds)
    steps: list[Step]
    sigma: float  # the noise level used (relative)
    newest: Newest | None  # None for a series under three points


def weighted_median(y: np.ndarray, w: np.ndarray) -> float:
    """The weighted median of ``y`` (the lower one where two halves weigh the same)."""
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(w[order])
    i = int(np.searchsorted(cum, 0.5 * cum[-1]))
    return float(y[order][min(i, len(y) - 1)])


def weights(half_widths: np.ndarray) -> np.ndarray:
    """Relative weights from the points' interval half-widths (log units); missing ones get
    the median weight; normalised to a median of 1 and clipped to [1/4, 4]."""
    h = np.asarray(half_widths, dtype=float)
    good = np.isfinite(h) & (h > 0)
    w = np.ones_like(h)
    if good.any():
        w[good] = 1.0 / h[good]
        w[good] /= np.median(w[good])
    return np.clip(w, 1.0 / WEIGHT_CLIP, WEIGHT_CLIP)


def diff_sigma(y: np.ndarray) -> float:
    """The robust spread of neighbouring differences as a point's standard deviation (log
    units): a few steps hardly move it."""
    if len(y) < 3:
        return 0.0
    return 1.4826 * float(np.median(np.abs(np.diff(y)))) / math.sqrt(2.0)


def noise_floor(half_widths: np.ndarray) -> float:
    """The least noise a series is given: its points' median interval half-width / 1.96, and
    at least :data:`MIN_SIGMA`."""
    h = np.asarray(half_widths, dtype=float)
    h = h[np.isfinite(h) & (h > 0)]
    return max(MIN_SIGMA, float(np.median(h)) / Z95) if len(h) else MIN_SIGMA


def _segment_costs(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``cost[i, j]``: the weighted L1 deviation of points ``i..j-1`` from their weighted median
    (each start's segments grown one point at a time, kept sorted)."""
    n = len(y)
    cost = np.full((n + 1, n + 1), np.inf)
    ys, ws = y.tolist(), w.tolist()
    for i in range(n):
        pts: list[tuple[float, float]] = []
        for j in range(i, n):
            bisect.insort(pts, (ys[j], ws[j]))
            half, acc, mu = 0.5 * sum(p[1] for p in pts), 0.0, pts[-1][0]
            for v, wt in pts:
                acc += wt
                if acc >= half:
                    mu = v
                    break
            cost[i, j + 1] = sum(wt * abs(v - mu) for v, wt in pts)
    return cost


def segment(y: np.ndarray, w: np.ndarray, scale: float, penalty: float) -> list[tuple[int, int]]:
    """The segmentation minimising ``sum cost / scale + penalty * segments`` (exact)."""
    n = len(y)
    cost = _segment_costs(y, w) / scale
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    back = np.zeros(n + 1, dtype=int)
    for j in range(1, n + 1):
        totals = best[:j] + cost[:j, j] + penalty
        back[j] = int(np.argmin(totals))
        best[j] = totals[back[j]]
    cuts, j = [], n
    while j > 0:
        cuts.append((int(back[j]), j))
        j = back[j]
    return cuts[::-1]


def _se(sigma: float, w: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Standard error of the difference of two segments' weighted medians (log units)."""
    inv = 1.0 / float(np.sum(w[a[0] : a[1]] ** 2)) + 1.0 / float(np.sum(w[b[0] : b[1]] ** 2))
    return sigma * math.sqrt(math.pi / 2) * math.sqrt(inv)


def residual_sigma(y: np.ndarray, w: np.ndarray, segs: list[tuple[int, int]]) -> float:
    """The noise level left around a segmentation: the weighted mean absolute residual as a
    standard deviation (x sqrt(pi/2)), corrected for the levels fitted (n / (n - k))."""
    n, k = len(y), len(segs)
    if n - k < 1:
        return MIN_SIGMA
    res = np.concatenate(
        [w[a:b] * np.abs(y[a:b] - weighted_median(y[a:b], w[a:b])) for a, b in segs]
    )
    return float(np.sum(res)) / (n - k) * math.sqrt(math.pi / 2)


def critical(n: int, k: int, alpha: float) -> float:
    """The |t| a step must pass: Student's t with n - k degrees of freedom (the noise level is
    estimated from the series) at ``alpha`` shared over the n - 1 places a step could be."""
    dof = max(n - k, 1)
    return float(student_t.ppf(1.0 - alpha / (2.0 * max(n - 1, 1)), dof))


def _gap(y: np.ndarray, w: np.ndarray, seg: tuple[int, int], level: float) -> float:
    a, b = seg
    return abs(weighted_median(y[a:b], w[a:b]) - level)


def _first_spike(segs: list[tuple[int, int]]) -> int | None:
    return next((i for i in range(len(segs) - 1) if segs[i][1] - segs[i][0] == 1), None)


def merge_spikes(
    y: np.ndarray, w: np.ndarray, segs: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Fold every one-point segment but the last into its nearer neighbour: one commit out of
    line between two others is an outlier (a slow spell), not a change of level. Only the
    newest commit may stand alone, since what follows it is not known yet."""
    segs = list(segs)
    k = _first_spike(segs)
    while k is not None and len(segs) > 1:
        level = y[segs[k][0]]
        before = _gap(y, w, segs[k - 1], level) if k > 0 else math.inf
        after = _gap(y, w, segs[k + 1], level)
        j = k - 1 if before <= after else k + 1
        lo, hi = min(j, k), max(j, k)
        segs = [*segs[:lo], (segs[lo][0], segs[hi][1]), *segs[hi + 1 :]]
        k = _first_spike(segs)
    return segs


def _prune(y, w, segs, sigma_floor, alpha):
    """Merge the least significant step until every step passes :func:`critical`."""
    while len(segs) > 1:
        sigma = max(sigma_floor, residual_sigma(y, w, segs))
        levels = [weighted_median(y[a:b], w[a:b]) for a, b in segs]
        t = [
            abs(levels[k] - levels[k - 1]) / _se(sigma, w, segs[k - 1], segs[k])
            for k in range(1, len(segs))
        ]
        k = int(np.argmin(t))
        if t[k] >= critical(len(y), len(segs), alpha):
            return segs, sigma
        segs = [*segs[:k], (segs[k][0], segs[k + 1][1]), *segs[k + 2 :]]
    return segs, max(sigma_floor, residual_sigma(y, w, segs))


def newest_test(
    y: np.ndarray, w: np.ndarray, segs: list[tuple[int, int]], floor: float
) -> tuple[float, int, float]:
    """The newest point against the level it is compared with: ``(t, dof, level)``, ``t`` > 0
    when it is slower (log units). The level is its segment's without it, or the previous
    segment's when it stands alone; the noise is the series' without it (an outlier would
    inflate it)."""
    a, b = segs[-1]
    ref = segs[-2] if b - a == 1 and len(segs) > 1 else (a, b - 1)
    rest = [*segs[:-2], ref] if b - a == 1 and len(segs) > 1 else [*segs[:-1], ref]
    sigma = max(floor, residual_sigma(y[:-1], w[:-1], rest))
    level = weighted_median(y[ref[0] : ref[1]], w[ref[0] : ref[1]])
    t = (y[b - 1] - level) / _se(sigma, w, ref, (b - 1, b))
    return float(t), max(len(y) - len(rest) - 1, 1), float(level)


def _newest_alone(y, w, segs, floor, alpha):
    """Split the newest commit off its segment when it alone is out of line with it.

    The fit cannot tell a one-point step from an outlier, and the Bonferroni share of
    :func:`critical` is for a step anywhere; the newest point is the one place a check asks
    about, so it is tested on its own at ``alpha``.
    """
    if segs[-1][1] - segs[-1][0] < 3:
        return segs
    t, dof, _ = newest_test(y, w, segs, floor)
    if abs(t) >= float(student_t.ppf(1.0 - alpha / 2.0, dof)):
        a, b = segs[-1]
        return [*segs[:-1], (a, b - 1), (b - 1, b)]
    return segs


def fit(
    values_s: np.ndarray, half_widths: np.ndarray | None = None, *, alpha: float = ALPHA
) -> Fit:
    """Fit a series of positive figures (seconds) in commit order.

    Args:
      values_s: one figure a commit (e.g. the median of its runs' step medians), in order.
      half_widths: each point's interval half-width in log units (None: equal weights).
      alpha: the chance that a series of pure noise gets a step anywhere.
    """
    v = np.asarray(values_s, dtype=float)[-MAX_POINTS:]
    h = np.full(len(v), np.nan) if half_widths is None else np.asarray(half_widths, float)
    h = h[-MAX_POINTS:]
    y = np.log(v)
    w = weights(h)
    floor = noise_floor(h)
    if len(y) < 3:
        return Fit([(0, len(y))], [float(np.median(v))] if len(v) else [], [], floor, None)
    sigma0 = max(floor, diff_sigma(y))
    segs = segment(y, w, sigma0 / math.sqrt(2.0), BETA * math.log(len(y)))
    segs, sigma = _prune(y, w, merge_spikes(y, w, segs), floor, alpha)
    segs = _newest_alone(y, w, segs, floor, alpha)
    if len(segs) > 1:
        sigma = max(floor, residual_sigma(y, w, segs))
    levels = [weighted_median(y[a:b], w[a:b]) for a, b in segs]
    steps = []
    for k in range(1, len(segs)):
        delta, se = levels[k] - levels[k - 1], _se(sigma, w, segs[k - 1], segs[k])
        steps.append(
            Step(
                index=segs[k][0],
                ratio=math.exp(delta),
                ratio_low=math.exp(delta - Z95 * se),
                ratio_high=math.exp(delta + Z95 * se),
                before=math.exp(levels[k - 1]),
                after=math.exp(levels[k]),
            )
        )
    t, dof, level = newest_test(y, w, segs, floor)
    newest = Newest(ratio=math.exp(y[-1] - level), p_slower=float(student_t.sf(t, dof)))
    return Fit(segs, [math.exp(x) for x in levels], steps, sigma, newest)
