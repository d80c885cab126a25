"""Result rows: a configuration's identity, the columns derived from measured ones and the
machine's peaks, rows for configurations that failed, and one row from several passes.

A *spec* (what to measure, :mod:`bench.selection`) becomes a row's identifying columns through
:func:`identity`, the only place they are assembled: the planner hashes them into
``config_id``, the worker starts its row from them and the parent's failure rows too.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from .. import catalog
from . import samples, schema

Row = dict[str, Any]
Spec = dict[str, Any]


def identity(spec: Spec, dataset: dict[str, Any] | None = None) -> Row:
    """The identifying columns of the row measuring ``spec`` (the key columns, the shape's
    depth and width, the host and, when given, the dataset the batches came from)."""
    sizes = [int(s) for s in spec["layer_sizes"]]
    row = {
        "framework": spec.get("framework") or catalog.framework(spec["variant"]),
        "variant": spec["variant"],
        "kernel": spec["kernel"],
        "backend": spec["backend"],
        "device_kind": spec.get("device_kind"),
        "host": socket.gethostname(),
        "n_processes": int(spec.get("n_processes", 1)),
        "n_devices": int(spec["n_devices"]),
        "layer_sizes": ",".join(map(str, sizes)),
        "depth": len(sizes) - 2,
        "width": max(sizes[1:-1], default=0),
        "batch_size": int(spec["batch_size"]),
        "dtype": spec["dtype"],
    }
    row.update(schema.arithmetic({**spec, **row}))
    if dataset is not None:
        row.update(dataset=dataset.get("name"), dataset_real=bool(dataset.get("real")))
    return row


def config_id(spec: Spec) -> str:
    """The ``config_id`` of the row that will measure ``spec``."""
    return schema.config_id(identity(spec))


def min_bytes(row: Row) -> float:
    """Bytes one step must move at least: the batch read once, the params read (and written).

    An update or predict call takes float32 inputs (4 bytes a pixel, and a one-hot row of
    labels or log-probabilities out); an epoch step reads the dataset as stored, one byte a
    pixel and one a label, whichever form a variant keeps it in: the same bytes for every
    epoch row.
    """
    sizes = [int(s) for s in str(row["layer_sizes"]).split(",")]
    b = int(row["batch_size"])
    params = catalog.n_params(sizes)
    k = int(row.get("work_multiplier") or 1)
    written = 2 if row["kernel"] in (catalog.UPDATE, catalog.EPOCH) else 1
    if row["kernel"] == catalog.EPOCH:
        return b * (sizes[0] + 1) + 4.0 * params * k * written
    io = b * (sizes[0] + sizes[-1])  # images in; labels in (update) or log-probs out (predict)
    return 4.0 * (io + params * k * written)


def _sizes(row: Row) -> tuple[int, ...]:
    value = row.get("layer_sizes")
    parts = value.split(",") if isinstance(value, str) else (value or ())
    return tuple(int(s) for s in parts)


def thin_ceiling_applies(row: Row) -> bool:
    """Whether a row is held against the dot ceilings of its own shapes
    (:mod:`bench.measure.ceilings`) rather than the large-matmul peak: ``[784, 10]`` in float32
    at full precision, on one device."""
    return (
        _sizes(row) == tuple(catalog.LOGREG)
        and row.get("dtype") == "float32"
        and row.get("precision") in (None, "highest")
        and int(row.get("n_devices") or 1) == 1
    )


def thin_ceiling(row: Row, peaks: dict[str, Any]) -> float | None:
    """The FLOP/s ceiling of a ``[784, 10]`` row's own dots at its batch size, measured in the
    run: both dots for an update or an epoch step, the forward one for a predict; None where
    it does not apply or was not measured."""
    if not thin_ceiling_applies(row):
        return None
    dots = ((peaks.get(row.get("backend"), {}) or {}).get("float32") or {}).get("thin_dots") or {}
    entry = dots.get(str(int(row["batch_size"])))
    if not entry:
        return None
    if row.get("kernel") == catalog.PREDICT:
        return catalog.flops_forward(catalog.LOGREG, int(row["batch_size"])) / entry["forward_s"]

    return float(entry["ceiling_flops_per_s"])


def peak_key(dtype: str, precision: str | None) -> str:
    """The key of the peak a row of ``dtype`` and ``precision`` is measured against, in
    ``metadata.json``'s ``peaks[backend]``: ``float32`` (full float32), ``float32:tf32``,
    ``float32:default``, ``bfloat16``."""
    if dtype != "float32" or precision in (None, "highest"):
        return dtype
    return f"{dtype}:{precision}"


def _peak(row: Row, peaks: dict[str, Any]) -> dict[str, Any]:
    """The row's peak: of its own arithmetic; a row from before arithmetic was recorded takes
    its dtype's (float32's when there is none)."""
    backend_peaks = peaks.get(row.get("backend"), {}) or {}
    if row.get("precision") is not None:
        return backend_peaks.get(peak_key(row.get("dtype"), row.get("precision"))) or {}
    return backend_peaks.get(row.get("dtype")) or backend_peaks.get("float32") or {}


def device_scale(row: Row) -> int:
    """How many devices' peaks a row's ceiling is: its device count, but one on CPU, whose fake
    devices share the host's cores (the host's peak is the ceiling for all of them)."""
    return 1 if row.get("backend") == "cpu" else int(row.get("n_devices") or 1)


def derive(row: Row, peaks: dict[str, Any]) -> Row:
    """Columns computed from measured ones and the machine's peaks (``row`` is updated).

    The roofline and the arithmetic intensity count :func:`min_bytes`, the same bytes for
    every framework and variant; XLA's ``bytes_accessed`` (an estimate of the compiled code's
    traffic, 2-4x larger here, and absent for the peers) stays a column of its own.
    """
    t = row.get("step_median_s")
    peak = _peak(row, peaks)
    scale = device_scale(row)
    pf = peak.get("matmul_flops_per_s")
    pb = peak.get("bandwidth_bytes_per_s")
    row["peak_flops_per_s"] = pf * scale if pf else None
    row["peak_bandwidth_bytes_per_s"] = pb * scale if pb else None
    row["peak_fraction"] = row["roofline_fraction"] = None  # none kept from other peaks
    row["bound_s"] = row["bound_ratio"] = None
    thin = thin_ceiling(row, peaks)
    row["ceiling_flops_per_s"] = thin or row["peak_flops_per_s"]
    row["ceiling"] = "thin-dots" if thin else ("matmul-peak" if row["peak_flops_per_s"] else None)
    row["above_peak"] = False
    row.update(launch_floor(row, peak))
    if row.get("status") != "ok" or not t or t <= 0:
        return row
    if row["launch_floor_s"]:
        row["launch_ratio"] = t / row["launch_floor_s"]
    row["min_bytes"] = nbytes = min_bytes(row)
    flops = row.get("flops") or 0.0
    row["examples_per_s"] = row["batch_size"] * (row.get("work_multiplier") or 1) / t
    row["flops_per_s"] = flops / t
    row["arithmetic_intensity"] = flops / nbytes if nbytes else None
    if row["peak_flops_per_s"]:
        row["peak_fraction"] = row["flops_per_s"] / row["peak_flops_per_s"]
    if row["peak_flops_per_s"] and row["peak_bandwidth_bytes_per_s"]:
        bound = max(flops / row["peak_flops_per_s"], nbytes / row["peak_bandwidth_bytes_per_s"])
        row["roofline_fraction"] = bound / t
    bounds = [flops / row["ceiling_flops_per_s"]] if row["ceiling_flops_per_s"] else []
    if row["peak_bandwidth_bytes_per_s"]:
        bounds.append(nbytes / row["peak_bandwidth_bytes_per_s"])
    if bounds and max(bounds) > 0:
        row["bound_s"] = max(bounds)
        row["bound_ratio"] = t / row["bound_s"]

    # FLOP/s above the matmul peak: that peak was measured too low. (A roofline fraction above 1
    # is not: data a step re-reads from cache beats the DRAM bandwidth the roofline divides by.)
    row["above_peak"] = row["peak_fraction"] is not None and row["peak_fraction"] > 1.0
    return row


def launch_floor(row: Row, peak: dict[str, Any]) -> Row:
    """The launch floor of a row's step: the kernels its compiled step launches
    (``launches_per_call / steps_per_call``) times the cost of one launch measured in the run
    (:mod:`bench.measure.launches`); the least time the step could take were launching all it
    did. Columns ``launch_s``, ``launches_per_step``, ``launch_floor_s``, ``launch_ratio``
    (None where a figure is missing; the ratio is filled in by :func:`derive`)."""
    out: Row = dict.fromkeys(("launch_s", "launches_per_step", "launch_floor_s", "launch_ratio"))
    cost = (peak.get("launch") or {}).get("launch_s")
    per_call = row.get("launches_per_call")
    steps = row.get("steps_per_call") or 1
    if isinstance(per_call, (int, float)) and per_call > 0:
        out["launches_per_step"] = per_call / steps
    if isinstance(cost, (int, float)) and cost > 0:
        out["launch_s"] = float(cost)
        if out["launches_per_step"]:
            out["launch_floor_s"] = cost * out["launches_per_step"]
    return out


def finish(row: Row, spec: Spec, run_id: str, peaks: dict[str, Any]) -> Row:
    """A measured (or failed) row made ready to store: schema version, run, configuration and
    the derived columns."""
    row = dict(row)
    row.setdefault("device_kind", spec.get("device_kind"))
    row["schema_version"] = schema.SCHEMA_VERSION
    row["run_id"] = run_id
    row["config_id"] = spec["config_id"]
    row["grid"] = spec.get("grid")
    return derive(row, peaks)


def failed(spec: Spec, status: str, message: str, dataset: dict[str, Any] | None) -> Row:
    """The row of a configuration that produced none: ``status`` ``error`` or ``timeout``."""
    return {**identity(spec, dataset or {}), "status": status, "error": message}


#: passes within 5% of the fastest pass are pooled; slower ones (disturbed) are dropped
POOL_TOLERANCE = 1.05


#: the figures of the cached compile (one a pass), each the median over the passes
CACHED_COLUMNS = ("fresh_compile_s", "cached_compile_s", "cached_first_call_s")


def merge_passes(rows: list[Row]) -> Row:
    """One row from several passes over one configuration (fresh processes each): the fastest
    passes, pooled.

    Other jobs and slow spells of the machine only ever make a measurement slower, so the
    passes whose median is within ``POOL_TOLERANCE`` of the fastest are the undisturbed ones;
    their samples are pooled. In an A/B both sides are picked by the same rule, each blind to
    the other. The row also lists every pass's median (``pass_medians_s``) and the ones kept
    (``passes_kept``, from 0).
    """
    ok = [r for r in rows if r.get("status") == "ok"]
    if len(rows) == 1 or not ok:
        return rows[-1]
    medians = [r.get("step_median_s") if r.get("status") == "ok" else None for r in rows]
    best = min(m for m in medians if m is not None)
    kept = [i for i, m in enumerate(medians) if m is not None and m <= POOL_TOLERANCE * best]
    out = dict(rows[kept[0]])
    pooled = [v for i in kept for v in rows[i].get("samples_s") or []]
    sync = [v for i in kept for v in rows[i].get("sync_samples_s") or []]
    if pooled:
        loops = int(out.get("loops_per_sample") or 1)
        out.update(samples.per_step(samples.summarize(pooled, sync, loops), 1))
    # compile time: every pass's cold compiles pooled (a slow spell lengthens a compile as it
    # does a step, but the passes are kept for the step time's sake; the compile test is on
    # the passes' own medians, pass_cold_compile_s)
    compiles = [c for r in ok for c in samples.compile_repeats_of(r)]
    if compiles:
        out.update(samples.summarize_compiles(compiles))
    out["pass_cold_compile_s"] = [
        _cold_compile(r) if r.get("status") == "ok" else None for r in rows
    ]
    for key in ("first_call_s", *CACHED_COLUMNS):
        values = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        out[key] = float(np.median(values)) if values else out.get(key)
    loads = [r["foreign_load"] for r in ok if r.get("foreign_load") is not None]
    out["foreign_load"] = max(loads, default=None)
    out["load_retries"] = sum(int(r.get("load_retries") or 0) for r in rows)
    out["wall_s"] = sum(float(r.get("wall_s") or 0.0) for r in rows)
    out.update(repeats=len(rows), repeats_ok=len(ok), passes_kept=kept, pass_medians_s=medians)
    return out


def _cold_compile(row: Row) -> float | None:
    """One pass's cold compile time: its median, or (a row written before compiles were
    repeated) the sum of its phases."""
    value = row.get("cold_compile_s")
    if isinstance(value, (int, float)):
        return float(value)
    phases = [row.get(c) for c in schema.COMPILE_COLUMNS]
    have = [float(v) for v in phases if isinstance(v, (int, float))]
    return sum(have) if have else None
