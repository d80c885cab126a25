"""The performance targets, checked against a run's rows (a report section, never a unit test).

Every line holds one configuration against a goal and shows the figure it is held against
(``bound``): a peer's time measured in the same run, or a bound derived from the machine's
limits measured in the same run (:func:`bench.results.rows.derive`: ``bound_s`` is
``max(flops / ceiling, min_bytes / bandwidth)``, the ceiling of a ``[784, 10]`` row being the
FLOP/s its own dot shapes reach, :mod:`bench.measure.ceilings`).

1. ``vs torch-eager``: in every cell of layers {784,10; 784,1024,1024,10} × batch {32, 128,
   1024, 4096}, the fastest mnist_kernels variant on one device is at least as fast as
   ``torch-eager``: float32 at full precision, and (``bf16 vs torch-eager``) bfloat16, both
   sides running every matmul, forward and backward, on bfloat16 operands.
2. ``vs torch.compile``: the same in the cells ``torch-compile`` was measured in (float32).
3. ``deep net peak``: the deep net's fastest update at batch ≥ 1024 reaches ≥ 85% of the measured
   peak matmul FLOP/s.
4. ``bandwidth bound``: ``[784, 10]``'s update at batch 4096 within 2× of the time its
   ``min_bytes`` take at the measured bandwidth.
5. ``predict bound``: predict at batch 4096 within 1.3× of ``bound_s`` (the larger of its compute
   and bandwidth bounds).
6. ``fused epoch``: the fused ``[784, 10]`` epoch (``scan``, batch 128) within 1.3× of its bound,
   and ``fused vs notebook``: ≥ 5× faster than the notebook's own loop (``notebook`` epoch).
7. ``deep epoch``: the fused deep-net epoch within 1.15× of its compute bound (epoch FLOPs over
   the peak matmul FLOP/s).

On a GPU or TPU two more: ``deep net bf16 peak`` (the deep net's bfloat16 update at batch
≥ 4096 at ≥ 50% of the bfloat16 matmul peak) and ``launch floor`` (at batch 32 and 128 the
fastest fused step within 1.5× of its launch floor: ``launch_floor_s``, the launches its
compiled step runs times the cost of one measured in the same run).

Rows are held one device against one device (or its bound), each target's arithmetic on both
sides, per machine and backend; the fastest of a variant's named options (layout, compile
options) counts, and the line says which. A target whose rows are not in the run is listed as
not measured.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .. import catalog
from . import tables

LOGREG, DEEP = (",".join(map(str, sizes)) for sizes in (catalog.LOGREG, catalog.DEEP))
CELLS = [(layers, b) for layers in (LOGREG, DEEP) for b in (32, 128, 1024, 4096)]
#: the arithmetic of a dtype's rows: float32 at full precision, bfloat16 in every matmul
PRECISION = {"float32": "highest", "bfloat16": "bf16"}
COLUMNS = ["machine", "backend", "target", "configuration", "measured", "bound", "goal", "verdict"]
NUMERIC = (
    "batch_size",
    "step_median_s",
    "steps_per_call",
    "flops",
    "bound_s",
    "min_bytes",
    "launch_floor_s",
    "launches_per_step",
    "launch_s",
)


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows with their arithmetic, one device and one model each."""
    ok = tables.one_device_one_model(tables.ok_rows(df))
    ok = ok[ok["precision"].isin(tuple(PRECISION.values()))].copy()
    for col in NUMERIC:
        if col in ok.columns:
            ok[col] = pd.to_numeric(ok[col], errors="coerce")
    return ok


def _line(
    target: str, config: str, measured: str, bound: str, goal: str, met: bool | None
) -> dict[str, Any]:
    verdict = "not measured" if met is None else ("met" if met else "NOT met")
    return {
        "target": target,
        "configuration": config,
        "measured": measured,
        "bound": bound,
        "goal": goal,
        "verdict": verdict,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _name(row: Any) -> str:
    """The row's variant and the named options it ran with, where not the defaults."""
    parts = [str(row["variant"])]
    layout = row.get("grad_layout")
    if isinstance(layout, str) and layout != "tuned":
        parts.append(str(layout))
    compiled = row.get("compile_options")
    if isinstance(compiled, str) and compiled != catalog.STANDARD_COMPILE:
        parts.append(compiled)
    return parts[0] + (f" ({', '.join(parts[1:])})" if parts[1:] else "")


def _select(ok: pd.DataFrame, **where: Any) -> pd.DataFrame:
    rows = ok
    for col, value in where.items():
        rows = rows[rows[col] == value]
    return rows


def _fastest(ok: pd.DataFrame, **where: Any) -> Any:
    rows = _select(ok, **where)
    return None if rows.empty else rows.loc[rows["step_median_s"].idxmin()]


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def evaluate(df: pd.DataFrame) -> pd.DataFrame:
    """One line per target and configuration, per machine (the ``machine`` column) and
    backend."""
    out: list[dict[str, Any]] = []
    ok = _ok(df)
    if ok.empty:
        return pd.DataFrame()
    for (machine, backend), rows in ok.groupby(["machine", "backend"], sort=True):
        for line in _for_machine(rows):
            out.append({"machine": machine, "backend": backend, **line})
    frame = pd.DataFrame(out)
    return frame[COLUMNS] if not frame.empty else frame


def _for_machine(ok: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        *_vs_peer(ok, "torch-eager", "float32"),
        *_vs_peer(ok, "torch-eager", "bfloat16"),
        *_vs_peer(ok, "torch-compile", "float32", only_measured=True),
        *_vs_peer(ok, "torch-compile", "bfloat16", only_measured=True),
        *_deep_peak(ok),
        *_accelerator_bf16_peak(ok),
        *_launch_floor(ok),
        _bandwidth_bound(ok),
        *_predict_bound(ok),
        *_fused_epoch(ok),
        _deep_epoch(ok),
    ]


def _vs_peer(
    ok: pd.DataFrame, peer: str, dtype: str, only_measured: bool = False
) -> list[dict[str, Any]]:
    target = f"vs {peer}" if dtype == "float32" else f"bf16 vs {peer}"
    goal = f"jax ≤ {peer}"
    out = []
    for layers, b in CELLS:
        cell = f"{layers} batch {b}"
        where = {"layer_sizes": layers, "batch_size": b, "dtype": dtype, "kernel": "update"}
        theirs = _fastest(ok, variant=peer, **where)
        if theirs is None and only_measured:
            continue
        best = _fastest(ok, framework="jax", **where)
        if best is None or theirs is None:
            out.append(_line(target, cell, "—", "—", goal, None))
            continue
        t_jax, t_peer = best["step_median_s"], theirs["step_median_s"]
        measured = f"{_name(best)} {_ms(t_jax)} ({peer}/jax {t_peer / t_jax:.2f}×)"
        bound = f"{peer} {_ms(t_peer)}"
        out.append(_line(target, cell, measured, bound, goal, t_jax <= t_peer))
    return out


def _deep_peak(ok: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    goal = "≥ 85% of peak"
    for b in (1024, 4096):
        best = _fastest(
            ok, framework="jax", layer_sizes=DEEP, batch_size=b, dtype="float32", kernel="update"
        )

        cell = f"{DEEP} batch {b}"
        pf = None if best is None else _number(best.get("peak_fraction"))
        peak = None if best is None else _number(best.get("peak_flops_per_s"))
        if pf is None or peak is None:
            out.append(_line("deep net peak", cell, "—", "—", goal, None))
            continue
        bound = f"matmul peak {peak / 1e9:.0f} GFLOP/s"
        if str(best.get("above_peak")).lower() == "true":  # a peak measured too low: no verdict
            why = f"{_name(best)} {pf:.1%} of a peak measured too low"
            out.append(_line("deep net peak", cell, why, bound, goal, None))
            continue
        measured = f"{_name(best)} {pf:.1%} of peak"
        out.append(_line("deep net peak", cell, measured, bound, goal, pf >= 0.85))
    return out


def _accelerator_bf16_peak(ok: pd.DataFrame) -> list[dict[str, Any]]:
    """On a GPU or TPU: the deep net's bfloat16 update at batch ≥ 4096 at ≥ 50% of the
    measured bfloat16 matmul peak (XLA:CPU's bfloat16 is the CPU bf16 cells' business)."""
    if (ok["backend"] == "cpu").all():
        return []
    goal = "≥ 50% of the bfloat16 peak"
    rows = ok[(ok["batch_size"] >= 4096) & (ok["framework"] == "jax")]
    best = _fastest(rows, layer_sizes=DEEP, dtype="bfloat16", kernel="update")
    cell = f"{DEEP} bfloat16 batch ≥ 4096"
    pf = None if best is None else _number(best.get("peak_fraction"))
    if pf is None:
        return [_line("deep net bf16 peak", cell, "—", "—", goal, None)]
    peak = _number(best.get("peak_flops_per_s")) or 0.0
    measured = f"{_name(best)} batch {int(best['batch_size'])}: {pf:.1%} of peak"
    bound = f"bfloat16 matmul peak {peak / 1e12:.1f} TFLOP/s"
    return [_line("deep net bf16 peak", cell, measured, bound, goal, pf >= 0.5)]


def _launch_floor(ok: pd.DataFrame) -> list[dict[str, Any]]:
    """On a GPU or TPU, where kernel launches dominate a small batch's step: the fastest fused
    step (a JAX update making several steps a call, ``scan``'s, or the fused epoch) of each
    network at batch 32 and 128, float32, within 1.5× of its launch floor (the launches its
    compiled step runs times the cost of one, measured in the same run:
    :mod:`bench.measure.launches`)."""
    if (ok["backend"] == "cpu").all() or "launch_floor_s" not in ok.columns:
        return []
    goal = "≤ 1.5× launch floor"
    fused_epoch = (ok["kernel"] == "epoch") & (ok["variant"] == "scan")
    fused_update = (ok["kernel"] == "update") & (ok["steps_per_call"] > 1)
    fused = ok[(ok["framework"] == "jax") & (fused_epoch | fused_update)]
    out = []
    for layers in (LOGREG, DEEP):
        for b in (32, 128):
            cell = f"{layers} batch {b}"
            measured_floor = fused[fused["launch_floor_s"].notna()]
            best = _fastest(measured_floor, layer_sizes=layers, batch_size=b, dtype="float32")
            floor = None if best is None else _number(best.get("launch_floor_s"))
            if best is None or floor is None:
                out.append(_line("launch floor", cell, "—", "—", goal, None))
                continue
            t = best["step_median_s"]
            measured = f"{_name(best)} {best['kernel']} {_ms(t)} a step ({t / floor:.2f}×)"
            bound = (
                f"{_ms(floor)} = {best['launches_per_step']:.1f} launches × "
                f"{best['launch_s'] * 1e6:.2f} µs"
            )
            out.append(_line("launch floor", cell, measured, bound, goal, t / floor <= 1.5))
    return out


def _bound_text(row: Any, scale: int = 1) -> str:
    """How ``bound_s`` (of ``scale`` steps) came about: the larger of the compute and the
    bandwidth bound."""
    parts = []
    ceiling = _number(row.get("ceiling_flops_per_s"))
    flops = _number(row.get("flops"))
    if ceiling and flops:
        what = "own-dot ceiling" if row.get("ceiling") == "thin-dots" else "matmul peak"
        t = flops * scale / ceiling
        parts.append(f"compute {_ms(t)} at {what} {ceiling / 1e9:.1f} GFLOP/s")
    bw = _number(row.get("peak_bandwidth_bytes_per_s"))
    nbytes = _number(row.get("min_bytes"))
    if bw and nbytes:
        parts.append(f"bytes {_ms(nbytes * scale / bw)} at {bw / 1e9:.1f} GB/s")
    return "; ".join(parts)


def _bandwidth_bound(ok: pd.DataFrame) -> dict[str, Any]:
    best = _fastest(
        ok, framework="jax", layer_sizes=LOGREG, batch_size=4096, dtype="float32", kernel="update"
    )
    cell = f"{LOGREG} batch 4096"
    goal = "≤ 2× bandwidth bound"
    bw = None if best is None else _number(best.get("peak_bandwidth_bytes_per_s"))
    nbytes = None if best is None else _number(best.get("min_bytes"))
    if best is None or not bw or not nbytes:
        return _line("bandwidth bound", cell, "—", "—", goal, None)
    bound = nbytes / bw
    ratio = best["step_median_s"] / bound
    measured = f"{_name(best)} {_ms(best['step_median_s'])} ({ratio:.2f}×)"
    text = f"{_ms(bound)} = {nbytes / 1e6:.1f} MB at {bw / 1e9:.1f} GB/s; all bounds: "
    return _line("bandwidth bound", cell, measured, text + _bound_text(best), goal, ratio <= 2.0)


def _against_bound(target: str, cell: str, row: Any, goal: float, scale: int = 1) -> dict:
    """``row``'s time (``scale`` steps) against its ``bound_s`` (as many steps)."""
    text = f"≤ {goal}× bound"
    bound = None if row is None else _number(row.get("bound_s"))
    if row is None or bound is None:
        return _line(target, cell, "—", "—", text, None)
    t = row["step_median_s"]
    measured = f"{_name(row)} {_ms(t * scale)} ({t / bound:.2f}×)"
    return _line(
        target,
        cell,
        measured,
        f"{_ms(bound * scale)}: {_bound_text(row, scale)}",
        text,
        t / bound <= goal,
    )


def _predict_bound(ok: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for layers in (LOGREG, DEEP):
        best = _fastest(
            ok,
            framework="jax",
            layer_sizes=layers,
            batch_size=4096,
            dtype="float32",
            kernel="predict",
        )
        out.append(_against_bound("predict bound", f"{layers} batch 4096", best, 1.3))
    return out


def _epoch(ok: pd.DataFrame, layers: str, **where: Any) -> Any:
    return _fastest(
        ok, kernel="epoch", layer_sizes=layers, batch_size=128, dtype="float32", **where
    )


def _fused_epoch(ok: pd.DataFrame) -> list[dict[str, Any]]:
    cell = f"{LOGREG} batch 128"
    fused = _epoch(ok, LOGREG, variant="scan")
    notebook = _epoch(ok, LOGREG, variant="notebook")
    steps = 1 if fused is None else int(fused["steps_per_call"])
    lines = [_against_bound("fused epoch", cell, fused, 1.3, steps)]
    goal = "fused ≥ 5× the notebook's loop"
    if fused is None or notebook is None:
        lines.append(_line("fused vs notebook", cell, "—", "—", goal, None))
        return lines
    t_loop = notebook["step_median_s"] * notebook["steps_per_call"]
    t_fused = fused["step_median_s"] * fused["steps_per_call"]
    measured = f"{_name(fused)} {t_fused * 1e3:.1f} ms ({t_loop / t_fused:.2f}× the loop)"
    bound = f"notebook loop {t_loop * 1e3:.1f} ms"
    bound_s = _number(fused.get("bound_s"))
    if bound_s:
        bound += f"; at the fused bound it would be {t_loop / (bound_s * steps):.2f}×"
    lines.append(_line("fused vs notebook", cell, measured, bound, goal, t_loop / t_fused >= 5))
    return lines


def _deep_epoch(ok: pd.DataFrame) -> dict[str, Any]:
    deep = _epoch(ok, DEEP, variant="scan")
    peak = None if deep is None else _number(deep.get("peak_flops_per_s"))
    goal = "≤ 1.15× compute bound"
    cell = f"{DEEP} batch 128"
    if deep is None or not peak:
        return _line("deep epoch", cell, "—", "—", goal, None)
    steps = int(deep["steps_per_call"])
    t = deep["step_median_s"] * steps
    bound = deep["flops"] * steps / peak
    measured = f"{_name(deep)} {t:.3f} s ({t / bound:.2f}×)"
    text = f"{bound:.3f} s = {deep['flops'] * steps / 1e9:.0f} GFLOP at {peak / 1e9:.0f} GFLOP/s"
    return _line("deep epoch", cell, measured, text, goal, t / bound <= 1.15)
