"""Changes over a results history: each configuration's series per machine and branch, its
steps (:mod:`bench.history.steps`), and the check CI runs on the newest commit.

Two figures are followed: ``step`` (``step_median_s`` with its interval ``step_ci_low_s`` /
``step_ci_high_s``) and ``compile`` (``cold_compile_s`` with ``cold_compile_ci_low_s`` /
``cold_compile_ci_high_s``). A series is one (machine, branch, configuration, figure); its points
are commits in commit-time order, each the median of the commit's runs (their interval bounds:
the medians of the runs' bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats
from ..regression.sides import config_label
from . import steps as stepfit

#: figure -> (value column, interval low, interval high)
METRICS: dict[str, tuple[str, str, str]] = {
    "step": ("step_median_s", "step_ci_low_s", "step_ci_high_s"),
    "compile": ("cold_compile_s", "cold_compile_ci_low_s", "cold_compile_ci_high_s"),
}
SERIES_KEY = ("machine", "branch", "config_id", "metric")
#: the columns that say what a configuration is (shown beside each change).
LABEL_COLUMNS = ("label", "variant", "kernel", "layer_sizes", "batch_size", "dtype", "n_devices")
DEFAULT_FACTOR = 1.1
#: the family-wise chance that a check of unchanged code fails (Holm over every series).
DEFAULT_ALPHA = 0.05
NO_BRANCH = "(detached)"


@dataclass
class Analysis:
    """``points``: one row a series point (:data:`SERIES_KEY`, ``position``, ``commit``,
    ``commit_time``, ``value_s``, ``low_s``, ``high_s``, ``n_runs``, the label columns);
    ``changes``: one row a detected step (the series key, the label columns, ``commit`` that
    starts the new level, ``previous_commit``, ``ratio`` with ``ratio_low``/``ratio_high``,
    ``before_s``, ``after_s``, ``newest`` when it starts at the series' newest commit, ``kind``
    regression or improvement, ``n_points``); ``newest``: one row a series of three points or
    more (the series key, the label columns, ``commit``, ``ratio`` of its newest point to the
    level before it, ``p_slower`` the one-sided p-value of that ratio)."""

    points: pd.DataFrame
    changes: pd.DataFrame
    newest: pd.DataFrame


def _points(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    value, low, high = METRICS[metric]
    ok = rows[(rows["status"] == "ok") & (pd.to_numeric(rows[value], errors="coerce") > 0)]
    if ok.empty:
        return pd.DataFrame()
    ok = ok.assign(branch=ok["branch"].fillna(NO_BRANCH), metric=metric)
    keys = ["machine", "branch", "config_id", "metric", "commit"]
    grouped = ok.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        commit_time=("commit_time", "min"),
        start_time=("start_time", "max"),
        value_s=(value, "median"),
        low_s=(low, "median"),
        high_s=(high, "median"),
        n_runs=("run_id", "nunique"),
    ).reset_index()
    first = grouped.head(1).set_index(keys)
    labels = first.apply(lambda r: config_label(r.to_dict()), axis=1)
    out = out.join(labels.rename("label"), on=keys)
    for col in LABEL_COLUMNS[1:]:
        out = out.join(first[col], on=keys)
    out = out.sort_values([*SERIES_KEY, "commit_time", "start_time"], kind="stable")
    out["position"] = out.groupby(list(SERIES_KEY)).cumcount()
    return out.reset_index(drop=True)


def half_widths(points: pd.DataFrame) -> np.ndarray:
    """Each point's interval half-width in log units (NaN where it has none)."""
    low = pd.to_numeric(points["low_s"], errors="coerce").to_numpy(float)
    high = pd.to_numeric(points["high_s"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = (np.log(high) - np.log(low)) / 2.0
    return np.where(np.isfinite(h) & (h > 0), h, np.nan)


def _changes(series: pd.DataFrame, alpha: float) -> tuple[list[dict], dict]:
    fit = stepfit.fit(series["value_s"].to_numpy(float), half_widths(series), alpha=alpha)
    offset = len(series) - sum(b - a for a, b in fit.segments)  # cut to MAX_POINTS
    head = series.iloc[0]
    out = []
    for s in fit.steps:
        at = series.iloc[offset + s.index]
        out.append(
            {
                **{k: head[k] for k in SERIES_KEY},
                **{k: head[k] for k in LABEL_COLUMNS},
                "commit": at["commit"],
                "commit_time": at["commit_time"],
                "previous_commit": series.iloc[offset + s.index - 1]["commit"],
                "ratio": s.ratio,
                "ratio_low": s.ratio_low,
                "ratio_high": s.ratio_high,
                "before_s": s.before,
                "after_s": s.after,
                "newest": offset + s.index == len(series) - 1,
                "kind": "regression" if s.ratio > 1 else "improvement",
                "n_points": len(series),
                "noise": fit.sigma,
            }
        )
    last = series.iloc[-1]
    newest = {
        **{k: head[k] for k in SERIES_KEY},
        **{k: head[k] for k in LABEL_COLUMNS},
        "commit": last["commit"],
        "ratio": fit.newest.ratio if fit.newest else math.nan,
        "p_slower": fit.newest.p_slower if fit.newest else math.nan,
    }
    return out, newest


def analyse(
    rows: pd.DataFrame,
    *,
    metrics: tuple[str, ...] = ("step", "compile"),
    alpha: float = stepfit.ALPHA,
) -> Analysis:
    """Fit every series of a store's table (:func:`bench.history.store.load`'s ``rows``)."""
    parts = [_points(rows, m) for m in metrics] if len(rows) else []
    points = pd.concat([p for p in parts if len(p)], ignore_index=True) if parts else None
    if points is None or points.empty:
        return Analysis(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    found: list[dict] = []
    newest: list[dict] = []
    for _, series in points.groupby(list(SERIES_KEY), sort=False):
        if len(series) >= 3:
            steps, last = _changes(series.reset_index(drop=True), alpha)
            found += steps
            newest.append(last)
    changes = pd.DataFrame.from_records(found)
    if len(changes):
        changes = changes.sort_values(["commit_time", "machine", "label"], ascending=[False, 1, 1])
    return Analysis(points, changes.reset_index(drop=True), pd.DataFrame.from_records(newest))


def failing(
    analysis: Analysis, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """The series whose newest commit the check fails on (rows of ``analysis.newest`` with
    ``p_holm``): slower than ``factor`` and significant after Holm's correction over every
    series tested, so that a check of unchanged code fails with a chance of at most
    ``alpha`` however many configurations, machines and figures it follows (the rule
    ``bench compare`` and ``bench ab`` judge by)."""
    n = analysis.newest
    if n.empty:
        return n
    n = n.assign(p_holm=stats.holm(n["p_slower"].tolist()))
    return n[(n["ratio"] > factor) & (n["p_holm"] < alpha)].reset_index(drop=True)


def newest_commits(points: pd.DataFrame) -> pd.DataFrame:
    """Each machine and branch's newest commit (``machine``, ``branch``, ``commit``,
    ``commit_time``)."""
    if points.empty:
        return pd.DataFrame(columns=["machine", "branch", "commit", "commit_time"])
    idx = points.groupby(["machine", "branch"])["commit_time"].idxmax()
    return points.loc[idx, ["machine", "branch", "commit", "commit_time"]].reset_index(drop=True)


def fmt_change(row: dict) -> str:
    """``jit update 784,10 b128 float32 1dev  step  x1.21 [1.15, 1.27]  0.52 ms -> 0.63 ms``."""
    return (
        f"{row['label']}  {row['metric']}  x{row['ratio']:.3f} "
        f"[{row['ratio_low']:.3f}, {row['ratio_high']:.3f}]  "
        f"{_ms(row['before_s'])} -> {_ms(row['after_s'])}"
    )


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds * 1e3:.4g} ms" if seconds < 1 else f"{seconds:.4g} s"
