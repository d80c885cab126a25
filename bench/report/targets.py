"""The performance targets, checked against a run's rows (a report section, never a unit test).

1. ``vs torch-eager``: in every cell of layers {784,10; 784,1024,1024,10} × batch {32, 128, 1024,
   4096} (float32 at full precision, one device, update) the fastest mnist_kernels variant on
   one device is at least as fast as ``torch-eager``.
2. ``deep net peak``: the deep net's fastest update at batch ≥ 1024 reaches ≥ 85% of the measured
   peak matmul FLOP/s.
3. ``bandwidth bound``: ``[784, 10]`` at batch 4096 runs within 2× of the time its ``min_bytes``
   take at the measured bandwidth.
4. ``epoch``: the fused epoch (``scan`` epoch kernel) is ≥ 5× faster than the notebook's loop
   (``jit`` epoch kernel) for ``[784, 10]``, and within 1.15× of the compute bound (epoch FLOPs over
   peak FLOP/s) for the deep net.

Every target holds one device against one device (or its bound), float32 at full precision.
Each line says what was measured, the goal and whether it is met; a target whose rows are not in
the run is listed as not measured.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .. import catalog
from . import tables

LOGREG, DEEP = (",".join(map(str, sizes)) for sizes in (catalog.LOGREG, catalog.DEEP))
CELLS = [(layers, b) for layers in (LOGREG, DEEP) for b in (32, 128, 1024, 4096)]


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows with their arithmetic, one device and one model each: every target compares
    one device with one device, in float32 at full precision (bfloat16 where it says so)."""
    ok = tables.one_device_one_model(tables.ok_rows(df))
    ok = ok[ok["precision"].isin(("highest", "bf16"))].copy()
    ok["batch_size"] = pd.to_numeric(ok["batch_size"])
    ok["step_median_s"] = pd.to_numeric(ok["step_median_s"])
    return ok


def _line(target: str, config: str, measured: str, goal: str, met: bool | None) -> dict[str, Any]:
    verdict = "not measured" if met is None else ("met" if met else "NOT met")
    return {
        "target": target,
        "configuration": config,
        "measured": measured,
        "goal": goal,
        "verdict": verdict,
    }


def _fastest_jax(ok: pd.DataFrame, layers: str, batch: int, kernel: str = "update") -> Any:
    rows = ok[
        (ok["framework"] == "jax")
        & (ok["layer_sizes"] == layers)
        & (ok["batch_size"] == batch)
        & (ok["dtype"] == "float32")
        & (ok["kernel"] == kernel)
    ]
    return None if rows.empty else rows.loc[rows["step_median_s"].idxmin()]


def evaluate(df: pd.DataFrame) -> pd.DataFrame:
    """One line per target and configuration, per machine (the ``machine`` column if present)."""
    out: list[dict[str, Any]] = []
    ok = _ok(df)
    machines = ok["machine"].unique() if "machine" in ok.columns else [None]
    for machine in machines:
        rows = ok if machine is None else ok[ok["machine"] == machine]
        lines = _for_machine(rows)
        for line in lines:
            line["machine"] = machine
        out += lines
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    return frame[["machine", "target", "configuration", "measured", "goal", "verdict"]]


def _for_machine(ok: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        *_vs_torch(ok),
        *_deep_peak(ok),
        _bandwidth_bound(ok),
        _fused_epoch(ok),
        _deep_epoch(ok),
    ]


def _vs_torch(ok: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for layers, b in CELLS:
        cell = f"{layers} batch {b}"
        best = _fastest_jax(ok, layers, b)
        torch = ok[
            (ok["variant"] == "torch-eager")
            & (ok["layer_sizes"] == layers)
            & (ok["batch_size"] == b)
            & (ok["dtype"] == "float32")
            & (ok["kernel"] == "update")
        ]
        if best is None or torch.empty:
            out.append(_line("vs torch-eager", cell, "—", "jax ≤ torch-eager", None))
            continue
        t_jax, t_torch = best["step_median_s"], float(torch["step_median_s"].iloc[0])
        measured = (
            f"{best['variant']} {t_jax * 1e3:.3f} ms vs {t_torch * 1e3:.3f} ms "
            f"(torch/jax {t_torch / t_jax:.2f}×)"
        )
        out.append(_line("vs torch-eager", cell, measured, "jax ≤ torch-eager", t_jax <= t_torch))
    return out


def _deep_peak(ok: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for b in (1024, 4096):
        best = _fastest_jax(ok, DEEP, b)
        cell = f"{DEEP} batch {b}"
        pf = None if best is None else best.get("peak_fraction")
        if pf is None or (isinstance(pf, float) and math.isnan(pf)):
            out.append(_line("deep net peak", cell, "—", "≥ 85% of peak", None))
            continue
        if str(best.get("above_peak")).lower() == "true":  # a peak measured too low: no verdict
            why = f"{best['variant']} {float(pf):.1%} of a peak measured too low"
            out.append(_line("deep net peak", cell, why, "≥ 85% of peak", None))
            continue
        measured = f"{best['variant']} {float(pf):.1%} of peak"
        out.append(_line("deep net peak", cell, measured, "≥ 85% of peak", float(pf) >= 0.85))
    return out


def _bandwidth_bound(ok: pd.DataFrame) -> dict[str, Any]:
    best = _fastest_jax(ok, LOGREG, 4096)
    bw = None if best is None else best.get("peak_bandwidth_bytes_per_s")
    cell = f"{LOGREG} batch 4096"
    if best is None or not bw or not best.get("min_bytes"):
        return _line("bandwidth bound", cell, "—", "≤ 2× bound", None)
    bound = float(best["min_bytes"]) / float(bw)
    ratio = best["step_median_s"] / bound
    measured = (
        f"{best['variant']} {best['step_median_s'] * 1e3:.3f} ms, bound "
        f"{bound * 1e3:.3f} ms ({ratio:.2f}×)"
    )
    return _line("bandwidth bound", cell, measured, "≤ 2× bound", ratio <= 2.0)


def _epoch_row(ok: pd.DataFrame, variant: str, layers: str) -> Any:
    r = ok[
        (ok["kernel"] == "epoch")
        & (ok["variant"] == variant)
        & (ok["layer_sizes"] == layers)
        & (ok["batch_size"] == 128)
        & (ok["dtype"] == "float32")
    ]
    return None if r.empty else r.iloc[0]


def _fused_epoch(ok: pd.DataFrame) -> dict[str, Any]:
    loop, fused = _epoch_row(ok, "jit", LOGREG), _epoch_row(ok, "scan", LOGREG)
    if loop is None or fused is None:
        return _line("epoch", f"{LOGREG} batch 128", "—", "fused ≥ 5× the loop", None)
    t_loop = loop["step_median_s"] * loop["steps_per_call"]
    t_fused = fused["step_median_s"] * fused["steps_per_call"]
    measured = f"loop {t_loop:.3f} s, fused {t_fused:.3f} s ({t_loop / t_fused:.2f}×)"
    goal = "fused ≥ 5× the loop"
    return _line("epoch", f"{LOGREG} batch 128", measured, goal, t_loop / t_fused >= 5.0)


def _deep_epoch(ok: pd.DataFrame) -> dict[str, Any]:
    deep = _epoch_row(ok, "scan", DEEP)
    peak = None if deep is None else deep.get("peak_flops_per_s")
    goal = "≤ 1.15× compute bound"
    if deep is None or not peak:
        return _line("epoch", f"{DEEP} batch 128", "—", goal, None)
    t = deep["step_median_s"] * deep["steps_per_call"]
    bound = deep["flops"] * deep["steps_per_call"] / float(peak)
    measured = f"fused {t:.3f} s, compute bound {bound:.3f} s ({t / bound:.2f}×)"
    return _line("epoch", f"{DEEP} batch 128", measured, goal, t / bound <= 1.15)
