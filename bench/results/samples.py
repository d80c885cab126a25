"""From raw timing samples to a row's step columns: the summary statistics of a set of per-call
samples, and their conversion to per-SGD-step figures. Used where samples are taken (the
worker) and where the samples of several passes are pooled (the parent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import stats

#: the figures :func:`summarize` gives, each ``call_<name>_s`` and, per step, ``step_<name>_s``.
SUMMARY = ("median", "min", "mean", "std", "iqr", "ci_low", "ci_high")


def summarize(samples: list[float], sync_samples: list[float], loops: int) -> dict[str, Any]:
    """Statistics of per-call samples (seconds): median with its 95% interval, min, mean,
    standard deviation, IQR, and the median of the synced samples; the samples themselves."""
    x = np.asarray(samples, dtype=float)
    med, lo, hi, level = stats.median_interval(x)
    q1, q3 = np.percentile(x, [25, 75])
    sync_med = float(np.median(sync_samples)) if sync_samples else float("nan")
    return {
        "call_median_s": med,
        "call_min_s": float(x.min()),
        "call_mean_s": float(x.mean()),
        "call_std_s": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "call_iqr_s": float(q3 - q1),
        "call_ci_low_s": lo,
        "call_ci_high_s": hi,
        "ci_level": level,
        "n_samples": int(x.size),
        "loops_per_sample": int(loops),
        "sync_call_median_s": sync_med,
        "samples_s": [float(v) for v in x],
        "sync_samples_s": [float(v) for v in sync_samples],
    }


def per_step(figures: dict[str, Any], steps_per_call: int) -> dict[str, Any]:
    """Convert per-call figures to the per-SGD-step columns of the results schema."""
    n = max(int(steps_per_call), 1)
    out: dict[str, Any] = {
        "n_samples": figures["n_samples"],
        "step_ci_level": figures.get("ci_level"),
        "loops_per_sample": figures["loops_per_sample"],
        "samples_s": [v / n for v in figures["samples_s"]],
        "sync_samples_s": [v / n for v in figures["sync_samples_s"]],
    }
    for name in SUMMARY:
        out[f"step_{name}_s"] = figures[f"call_{name}_s"] / n
    out["sync_step_median_s"] = figures["sync_call_median_s"] / n
    out["dispatch_overhead_s"] = out["sync_step_median_s"] - out["step_median_s"]
    return out


#: the compile phases a cold compile is timed in, in order (their sum is one cold compile).
PHASES = ("trace", "lower", "compile")


def summarize_compiles(repeats: list[dict[str, float | None]]) -> dict[str, Any]:
    """The compile columns of a row from its cold compiles (each ``{"trace_s", "lower_s",
    "compile_s"}``, seconds; a phase the path does not have is None): every phase's median
    (``trace_s``, ...), the whole cold compile's median with its 95% interval, and the raw
    samples (``cold_compile_samples_s`` and one list per phase)."""
    totals = [sum(r.get(f"{p}_s") or 0.0 for p in PHASES) for r in repeats]
    out: dict[str, Any] = {}
    for p in PHASES:
        values = [r.get(f"{p}_s") for r in repeats]
        have = [float(v) for v in values if v is not None]
        out[f"{p}_s"] = float(np.median(have)) if have else None
        out[f"{p}_samples_s"] = have or None
    if not totals:
        return out
    med, lo, hi, level = stats.median_interval(np.asarray(totals, dtype=float))
    out.update(
        cold_compile_s=med,
        cold_compile_ci_low_s=lo,
        cold_compile_ci_high_s=hi,
        cold_compile_ci_level=level,
        n_compiles=len(totals),
        cold_compile_samples_s=[float(v) for v in totals],
    )
    return out


def compile_repeats_of(row: dict[str, Any]) -> list[dict[str, float | None]]:
    """A row's cold compiles back as phase dicts (the inverse of :func:`summarize_compiles`);
    a row written before compiles were repeated gives its one compile, or none."""
    lists = {p: row.get(f"{p}_samples_s") for p in PHASES}
    n = max((len(v) for v in lists.values() if isinstance(v, list)), default=0)
    if n:
        return [
            {
                f"{p}_s": (v[i] if isinstance(v, list) and len(v) == n else None)
                for p, v in lists.items()
            }
            for i in range(n)
        ]
    single = {f"{p}_s": row.get(f"{p}_s") for p in PHASES}
    return [single] if any(isinstance(v, (int, float)) for v in single.values()) else []
