"""The statistics behind `bench compare`: the verdict rule on synthetic samples of known
noise, the bootstrap interval, the median's interval, Mann-Whitney U's edges."""

from __future__ import annotations

import numpy as np
import pytest

from bench import stats
from tests.helpers import noise


def test_clear_slowdown_is_slower():
    base, cur = noise(1), [1.3 * x for x in noise(2)]
    cmp = stats.compare_samples(base, cur)
    assert cmp.verdict == "slower" and cmp.note == ""
    assert 1.2 < cmp.ratio < 1.4
    assert cmp.ci_low < cmp.ratio < cmp.ci_high
    assert cmp.p < 1e-6
    assert stats.verdict(base, cur) == "slower"


def test_clear_speedup_is_faster():
    assert stats.verdict(noise(1), [0.7 * x for x in noise(2)]) == "faster"


def test_noise_only_rarely_alarms():
    false_alarms = sum(
        stats.verdict(noise(2 * seed, sigma=0.1), noise(2 * seed + 1, sigma=0.1)) != "same"
        for seed in range(300)
    )
    assert false_alarms <= 3  # <= 1% of 300


def test_significant_but_small_change_is_same():
    # 5% slower with very little noise: significant, but under the 10% factor.
    base, cur = noise(1, sigma=0.005), [1.05 * x for x in noise(2, sigma=0.005)]
    cmp = stats.compare_samples(base, cur)
    assert cmp.p < 0.01 and cmp.verdict == "same"


def test_large_but_not_significant_change_is_same():
    base = [1.0] * 15 + [2.0] * 15
    cur = [1.0] * 14 + [2.0] * 16
    cmp = stats.compare_samples(base, cur)
    assert cmp.ratio > 1.1 and cmp.p > 0.5 and cmp.verdict == "same"


def test_too_few_samples_is_same_with_note():
    cmp = stats.compare_samples([1.0, 1.01, 0.99], [2.0, 2.02, 1.98])
    assert cmp.verdict == "same"
    assert "too few samples" in cmp.note
    assert cmp.ratio == pytest.approx(2.0)


def test_ratio_ci_is_deterministic_and_brackets_ratio():
    base, cur = noise(3), noise(4, scale=1.2)
    first = stats.median_ratio_ci(base, cur, seed=7)
    assert first == stats.median_ratio_ci(base, cur, seed=7)
    ratio, low, high = first
    assert low <= ratio <= high
    assert stats.median_ratio_ci([1.0] * 10, [2.0] * 10) == (2.0, 2.0, 2.0)
    assert np.isnan(stats.median_ratio_ci([], [1.0])[0])


def test_median_ci_and_mann_whitney_edges():
    x = noise(5, n=200)
    med, low, high = stats.median_ci(x)
    assert low < med < high
    assert stats.median_ci([1.0, 2.0]) == (1.5, 1.0, 2.0)  # too few: the whole range
    assert stats.mann_whitney_p([1.0] * 5, [1.0] * 5) == 1.0
    assert np.isnan(stats.mann_whitney_p([], [1.0]))
    assert stats.ratio_verdict(1.2, 1.1) == "slower"
    assert stats.ratio_verdict(0.8, 1.1) == "faster"
    assert stats.ratio_verdict(1.05, 1.1) == "same"


# --------------------------------------------------------------------------- CLI: exit codes


def test_the_interval_of_the_median_says_its_exact_coverage():
    rng = np.random.default_rng(0)
    for n, level in ((2, 0.5), (5, 0.9375), (6, 1 - 2 * 0.5**6)):
        x = rng.random(n)
        _med, lo, hi, got = stats.median_interval(x)
        assert (lo, hi) == (x.min(), x.max()) and got == pytest.approx(level)
    _med, lo, hi, got = stats.median_interval(rng.random(30))
    assert 0.95 <= got < 0.99 and lo > 0 and hi < 1  # order statistics inside the range
    assert stats.MIN_SAMPLES_95 == 6


def test_every_timing_preset_takes_enough_samples_for_95_percent():
    from bench.protocol import TimingSettings

    for name in ("quick", "default", "full"):
        n = TimingSettings.preset(name).min_samples
        assert stats.median_interval(np.arange(n, dtype=float))[3] >= 0.95, name
