"""Result rows: the columns derived from measured ones and the peaks, rows for failures, and
``results.jsonl`` written one flushed line at a time (``results.csv`` from it at the end).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from . import plan, schema


def min_bytes(row: dict[str, Any]) -> float:
    """Bytes one step must move at least: the batch read once, the params read (and written)."""
    sizes = [int(s) for s in str(row["layer_sizes"]).split(",")]
    b = int(row["batch_size"])
    params = plan.n_params(tuple(sizes))
    k = int(row.get("work_multiplier") or 1)
    io = b * (sizes[0] + sizes[-1])  # images in; labels in (update) or log-probs out (predict)
    return 4.0 * (io + params * k * (2 if row["kernel"] == "update" else 1))


def derive(row: dict[str, Any], peaks: dict[str, Any]) -> dict[str, Any]:
    """Columns computed from measured ones and the machine's peaks."""
    t = row.get("step_median_s")
    backend_peaks = peaks.get(row.get("backend"), {}) or {}
    peak = backend_peaks.get(row.get("dtype")) or backend_peaks.get("float32") or {}
    # fake CPU devices share the host's cores: the host's peak is the ceiling for all of them
    scale = 1 if row.get("backend") == "cpu" else int(row.get("n_devices") or 1)
    pf = peak.get("matmul_flops_per_s")
    pb = peak.get("bandwidth_bytes_per_s")
    row["peak_flops_per_s"] = pf * scale if pf else None
    row["peak_bandwidth_bytes_per_s"] = pb * scale if pb else None
    if row.get("status") != "ok" or not t or t <= 0:
        return row
    row["min_bytes"] = min_bytes(row)
    nbytes = row.get("bytes_accessed") or row["min_bytes"]
    flops = row.get("flops") or 0.0
    row["examples_per_s"] = row["batch_size"] * (row.get("work_multiplier") or 1) / t
    row["flops_per_s"] = flops / t
    row["arithmetic_intensity"] = flops / nbytes if nbytes else None
    if row["peak_flops_per_s"]:
        row["peak_fraction"] = row["flops_per_s"] / row["peak_flops_per_s"]
    if row["peak_flops_per_s"] and row["peak_bandwidth_bytes_per_s"]:
        bound = max(flops / row["peak_flops_per_s"], nbytes / row["peak_bandwidth_bytes_per_s"])
        row["roofline_fraction"] = bound / t
    return row


def finish_row(
    row: dict[str, Any], spec: dict[str, Any], run_id: str, peaks: dict[str, Any]
) -> dict[str, Any]:
    row = dict(row)
    row.setdefault("device_kind", spec.get("device_kind"))
    row["schema_version"] = schema.SCHEMA_VERSION
    row["run_id"] = run_id
    row["config_id"] = spec["config_id"]
    row["grid"] = spec.get("grid")
    return derive(row, peaks)


def failed_row(
    spec: dict[str, Any], status: str, message: str, dataset: dict[str, Any]
) -> dict[str, Any]:
    from .worker import identity

    row = identity(spec, dataset)
    row.update(status=status, error=message)
    return row


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row and flush it to disk at once: a kill loses at most the row in flight."""
    line = json.dumps({k: schema.clean(v) for k, v in row.items()}, default=str)
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def drop_torn_tail(path: Path) -> None:
    """Cut a last line a kill left half-written, so resumed rows start on a line of their own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def write_csv(run_dir: Path) -> Path:
    df = schema.load(run_dir)
    df = df.drop(columns=[c for c in ("traceback",) if c in df.columns])
    if "options" in df.columns:
        df["options"] = df["options"].map(lambda v: json.dumps(v) if isinstance(v, dict) else v)
    out = run_dir / "results.csv"
    df.to_csv(out, index=False)
    return out


def line_for(row: dict[str, Any]) -> str:
    what = (
        f"{row['variant']:<13} {row['kernel']:<7} {row['layer_sizes']:<20} "
        f"b={row['batch_size']:<5} {row['dtype']:<8} x{row['n_devices']}"
    )
    if row.get("status") != "ok":
        return f"{what}  {row.get('status', '?').upper()}: {str(row.get('error'))[:120]}"
    ms = row["step_median_s"] * 1e3
    lo, hi = (
        (row.get("step_ci_low_s") or math.nan) * 1e3,
        (row.get("step_ci_high_s") or math.nan) * 1e3,
    )
    phases = [row.get(k) for k in ("trace_s", "lower_s", "compile_s")]
    comp = f"{sum(p or 0.0 for p in phases):6.3f} s" if any(phases) else "     —  "
    extra = f"  recompiles {row['recompiles']}!" if row.get("recompiles") else ""
    pf = row.get("peak_fraction")
    return (
        f"{what}  step {ms:9.4f} ms [{lo:.4f}, {hi:.4f}]  compile {comp}"
        + (f"  {pf:6.1%} of peak" if pf is not None else "")
        + extra
    )


def rederive(path: Path, peaks: dict[str, Any]) -> None:
    """Recompute the peak-derived columns of every row of ``path`` (atomically)."""
    if not path.exists():
        return
    drop_torn_tail(path)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for line in path.read_text().splitlines():
            if line.strip():
                row = derive(json.loads(line), peaks)
                f.write(
                    json.dumps({k: schema.clean(v) for k, v in row.items()}, default=str) + "\n"
                )
    tmp.replace(path)
