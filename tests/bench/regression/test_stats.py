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


# ----------------------------------------------------------- passes: the unit of evidence


def test_paired_passes_give_the_geometric_mean_ratio_and_a_t_interval():
    base = [1.0, 1.3, 0.9, 1.1]
    cur = [1.2 * 1.01, 1.3 * 1.19, 0.9 * 1.22, 1.1 * 1.18]
    cmp = stats.compare_passes(base, cur, paired=True)
    d = np.log(np.array(cur) / np.array(base))
    assert cmp.ratio == pytest.approx(np.exp(d.mean()))
    assert cmp.ci_low < cmp.ratio < cmp.ci_high and cmp.n_base == cmp.n_cur == 4
    t = d.mean() / (d.std(ddof=1) / 2)
    from scipy import stats as sp

    assert cmp.p_slower == pytest.approx(sp.t.sf(t, 3))
    assert cmp.p_slower + cmp.p_faster == pytest.approx(1.0)


def test_a_failed_pass_drops_its_pair_and_one_pass_is_no_evidence():
    cmp = stats.compare_passes([1.0, None, 1.0], [1.2, 1.0, None], paired=True)
    assert cmp.n_cur == 1 and not cmp.testable and cmp.ratio == pytest.approx(1.2)
    single = stats.compare_passes([1.0], [3.0], paired=False)
    assert not single.testable and single.ratio == pytest.approx(3.0)


def test_separate_runs_use_welch_and_a_lone_pass_borrows_the_other_sides_spread():
    base, cur = [1.0, 1.02, 0.98, 1.01], [1.2, 1.25, 1.18]
    cmp = stats.compare_passes(base, cur, paired=False)
    from scipy import stats as sp

    welch = sp.ttest_ind(np.log(cur), np.log(base), equal_var=False, alternative="greater")
    assert cmp.p_slower == pytest.approx(welch.pvalue)
    lone = stats.compare_passes([1.0], cur, paired=False)
    assert lone.testable and lone.p_slower < 0.05


def test_identical_passes_are_certain_either_way():
    assert stats.compare_passes([1.0, 1.0], [1.0, 1.0], paired=True).p_slower == 1.0
    same_shift = stats.compare_passes([1.0, 2.0], [1.5, 3.0], paired=True)
    assert same_shift.p_slower == 0.0 and same_shift.ratio == pytest.approx(1.5)


def test_holm_adjusts_step_down_and_keeps_order():
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    adj = stats.holm(p)
    # sorted 0.005, 0.01, 0.03, 0.04 of m = 4: x4, x3, x2, x1, running max
    assert adj[4] == pytest.approx(0.02) and adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[3])
    assert stats.holm([0.04, 0.02]) == pytest.approx([0.04, 0.04])
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]


def test_process_level_noise_fools_the_samples_not_the_passes():
    """Each process runs its own few percent slow or fast (a core, a memory layout), its samples
    agree to 1%: the samples of one process a side find "significant" differences between
    identical code at every seed; the passes do not."""
    rng = np.random.default_rng(0)
    sample_alarms = pass_alarms = 0
    for _ in range(200):
        effects = np.exp(0.08 * rng.standard_normal((2, 3)))  # 2 sides x 3 processes
        samples = [effects[s, 0] * np.exp(0.01 * rng.standard_normal(30)) for s in (0, 1)]
        sample_alarms += stats.compare_samples(samples[0], samples[1], 1.05, 0.05).verdict != "same"
        pm = [list(effects[s] * np.exp(0.01 * rng.standard_normal(3))) for s in (0, 1)]
        pass_alarms += stats.compare_passes(pm[0], pm[1], paired=False).p_slower < 0.05
    assert sample_alarms > 80  # ~ half of the A/A comparisons differ by 5% or more
    assert pass_alarms <= 20  # a one-sided test at 5%: about 10 of 200
