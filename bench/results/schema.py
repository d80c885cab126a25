"""The results schema: the columns of a row with their units, the groups of columns each
consumer uses, the configuration's identity (``config_id``) and the version.

A run directory (:mod:`bench.results.rundir`, which reads and writes them) holds:

- ``results.jsonl``: one JSON object per finished configuration, appended and flushed as each
  finishes, with every column below plus the raw samples (``samples_s``, ``sync_samples_s``).
  A configuration that was re-run (``--resume``) appears again; the last row wins.
- ``repeats.jsonl`` (runs of several passes): every pass of every configuration as measured, a
  row like those of ``results.jsonl`` plus :data:`PASS_COLUMN`, the pass's index from 0.
- ``results.csv``: the rows of ``results.jsonl`` without the raw-sample lists.
- ``metadata.json``: the machine, versions, peaks and command line (see :data:`METADATA_KEYS`).

Every row and the metadata carry ``schema_version``. Readers refuse a version they do not know
with a message saying which versions they read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
#: schema versions this code reads.
READABLE_VERSIONS = (1,)

#: The columns that identified a configuration when schema 1 was first written; ``config_id``
#: hashes their values (so ids of rows written then are kept).
BASE_KEY_COLUMNS = (
    "framework",
    "variant",
    "kernel",
    "backend",
    "device_kind",
    "n_processes",
    "n_devices",
    "layer_sizes",
    "batch_size",
    "dtype",
)
#: What the matmuls computed in, and the XLA options the step was compiled with, added since:
#: part of the identity, so rows of different arithmetic or compilation never merge or get
#: compared. A row written before they existed was measured with :func:`legacy_arithmetic` and
#: reads as that.
ARITHMETIC_COLUMNS = ("precision", "grad_layout", "compile_options")
#: The columns that identify a configuration: rows with equal keys measure the same thing.
KEY_COLUMNS = BASE_KEY_COLUMNS + ARITHMETIC_COLUMNS

#: Every column of ``results.csv``, with its meaning and unit.
COLUMNS: dict[str, str] = {
    "schema_version": "results schema version (int)",
    "run_id": "the run this row belongs to",
    "config_id": "stable hash of the key columns",
    "framework": "jax, torch or numpy",
    "variant": "kernel variant (jit, vmap, pmap, sharded, shard_map, scan, sharded_tp, ensemble, or a peer)",
    "kernel": "predict or update",
    "backend": "cpu, gpu or tpu",
    "device_kind": "device kind as JAX reports it",
    "host": "host name",
    "n_processes": "processes in the run (jax.distributed), 1 otherwise",
    "n_devices": "devices one call spreads over (global)",
    "layer_sizes": "widths, input to output, like 784,1024,1024,10",
    "depth": "number of hidden layers",
    "width": "widest hidden layer (0 for logistic regression)",
    "batch_size": "examples per SGD step or predict call",
    "dtype": "compute dtype (float32, bfloat16)",
    "precision": "matmul arithmetic: float32 at highest (full float32), tf32 (TensorFloat-32, "
    "NVIDIA GPUs) or default (the backend's); bf16 for bfloat16 rows (every matmul, forward and "
    "backward: bfloat16 operands, float32 sums, bfloat16 results); bf16-forward only in rows "
    "written before (JAX backward matmuls were float32 then)",
    "grad_layout": "weight-gradient layout: tuned ((dz.T @ x).T for layers of at most 64 "
    "outputs) or stock (jax.grad's x.T @ dz; the peers: their framework's own)",
    "compile_options": "the XLA compile options (jax.jit's compiler_options) as a named set of "
    "bench.catalog.COMPILE_OPTIONS: standard (XLA's own), fast-compile (CPU: LLVM optimisation "
    "level 0, no expensive passes; NVIDIA GPU: no autotuning: compile time for step time), "
    "no-ynnpack (CPU: no YNNPACK fusions) or ynnpack-dots (CPU: YNNPACK for the dots alone)",
    "steps_per_call": "SGD steps one call makes (scan: S)",
    "work_multiplier": "independent models per call (ensemble: K)",
    "dataset": "where the batches came from (fashion-mnist, mnist, synthetic)",
    "dataset_real": "true when the pixels are a real dataset",
    "trace_s": "jax.jit(f).trace time, caches cleared: median of the cold compiles (s)",
    "lower_s": "Traced.lower time: median of the cold compiles (s)",
    "compile_s": "Lowered.compile time: median of the cold compiles (s)",
    "cold_compile_s": "trace + lower + compile from cold caches (in-memory caches cleared, "
    "persistent cache off): median of the cold compiles (s)",
    "cold_compile_ci_low_s": "95% confidence interval of cold_compile_s, low end (s)",
    "cold_compile_ci_high_s": "95% confidence interval of cold_compile_s, high end (s)",
    "cold_compile_ci_level": "the interval's exact coverage (as step_ci_level; 0.9375 for 5 "
    "compiles, the whole range)",
    "n_compiles": "cold compiles timed (a worker of protocol 2 or older: 1; several passes: "
    "all of them pooled)",
    "pass_cold_compile_s": "each pass's cold_compile_s (s), as pass_medians_s",
    "fresh_compile_s": "trace + lower + compile in a fresh process with an empty persistent "
    "compilation cache, which it fills (s); only where the cached compile was asked for",
    "cached_compile_s": "trace + lower + compile in the next fresh process, the executable "
    "loaded from JAX's persistent compilation cache (minimum compile time and entry size 0): "
    "what a user's next start waits for (s)",
    "cached_first_call_s": "first execution after that cache hit, synced (s)",
    "cache_entry_bytes": "bytes the compile wrote to the persistent cache",
    "first_call_s": "first execution after compiling, synced (s)",
    "step_median_s": "median time of one step, pipelined samples (s)",
    "step_min_s": "fastest sample, per step (s)",
    "step_mean_s": "mean of samples, per step (s)",
    "step_std_s": "standard deviation of samples, per step (s)",
    "step_iqr_s": "interquartile range of samples, per step (s)",
    "step_ci_low_s": "95% confidence interval of the median, low end (s)",
    "step_ci_high_s": "95% confidence interval of the median, high end (s)",
    "step_ci_level": "the interval's exact coverage of the median (binomial order statistics): "
    "at least 0.95 from 6 samples on; below, the whole range, and less (0.9375 for 5)",
    "n_samples": "number of timed samples",
    "loops_per_sample": "calls per sample before one block_until_ready",
    "step_median_max_s": "slowest process's median step time (multi-process runs) (s)",
    "sync_step_median_s": "median step time with a sync after every call (s)",
    "dispatch_overhead_s": "sync_step_median_s - step_median_s (s)",
    "examples_per_s": "examples processed per second (all models of an ensemble)",
    "flops": "analytic matmul FLOPs of one step",
    "xla_flops": "FLOPs from compiled.cost_analysis(), all devices, one step (XLA counts a loop "
    "body once; may be missing or wrong on some backends)",
    "flops_per_s": "flops / step_median_s",
    "bytes_accessed": "bytes accessed from compiled.cost_analysis() per step",
    "min_bytes": "bytes one step must move at least: batch read once (float32; an epoch step "
    "reads the stored dataset, a byte a pixel and a label), params read and written",
    "arithmetic_intensity": "flops / min_bytes, the same byte count for every framework (FLOP/byte)",
    "peak_memory_bytes": "compiled.memory_analysis(): arguments + outputs + temporaries - aliased",
    "device_peak_bytes_in_use": "the most device memory this configuration used above what "
    "was in use before it (memory_stats(); empty where the backend keeps no count, or where the "
    "allocator's peak, which never resets, was set by an earlier configuration)",
    "peak_flops_per_s": "measured matmul peak of this backend and dtype, same run (FLOP/s)",
    "peak_bandwidth_bytes_per_s": "measured copy bandwidth of this backend, same run (byte/s)",
    "peak_fraction": "flops_per_s / peak_flops_per_s",
    "roofline_fraction": "max(flops / peak FLOP/s, min_bytes / peak bandwidth) / step_median_s",
    "ceiling_flops_per_s": "the compute ceiling the row is held against (FLOP/s): for [784, 10] "
    "in float32 on one device, the FLOP/s its own dots reach alone at its batch size, each in "
    "its fastest form, measured in the same run (thin-dots); else peak_flops_per_s",
    "ceiling": "which ceiling_flops_per_s is: thin-dots or matmul-peak",
    "bound_s": "the least time a step can take: max(flops / ceiling_flops_per_s, min_bytes / "
    "peak bandwidth) (s)",
    "bound_ratio": "step_median_s / bound_s: how far the step is from its bound (1 at it)",
    "above_peak": "true when peak_fraction came out over 1: the matmul peak was measured too "
    "low (in a slow spell of the machine), not a kernel beating the hardware; the end of the run "
    "measures the peaks again and derives every row anew",
    "hlo_ops": "instructions in the optimized HLO",
    "hlo_fusions": "fusion instructions in the optimized HLO",
    "launches_per_call": "kernels one call launches, from the optimized HLO: every instruction "
    "that runs, a loop body's as many times as its trip count, fused instructions inside their "
    "fusion's one kernel (empty: a loop of unknown trip count, or no HLO)",
    "launches_per_step": "launches_per_call / steps_per_call",
    "launch_s": "the cost of one kernel launch on this backend, measured in the same run inside "
    "a compiled loop of tiny kernels (s)",
    "launch_floor_s": "launch_s * launches_per_step: the least time the step could take were "
    "launching its kernels all it did (s)",
    "launch_ratio": "step_median_s / launch_floor_s: near 1, the step is bound by its launches",
    "recompiles": "backend compiles during the steady-state samples (must be 0)",
    "wall_s": "wall time spent on this configuration (s)",
    "canary_ratio": "how slow the worker's canary (a fixed reference workload) ran around this "
    "measurement, against its best in that worker: 1 as quick as the machine gets",
    "load_retries": "times the measurement was taken again because it was disturbed (the canary "
    "ran slow, or other jobs loaded the CPUs)",
    "unstable": "true when the measurement was still disturbed after its retries: a slow spell "
    "of the machine, not the kernel, may be in its figures",
    "repeats": "passes measured, each in a fresh process (`--repeats`; empty: one)",
    "passes_kept": "the passes pooled into this row: those within 5% of the fastest (from 0)",
    "pass_medians_s": "each pass's step median (s); every pass in full in repeats.jsonl",
    "passes_screen": "bench ab: the passes every configuration got before the suspects were "
    "picked; a suspect's later passes (in pass_medians_s) are the ones that confirm or clear it",
    "suspect": "bench ab: whether the screening passes put this configuration's ratio above the "
    "square root of the factor, so that it got confirming passes",
    "screen_ratio": "bench ab: a suspect's ratio (head / base) over its screening passes",
    "status": "ok, error, timeout or skipped",
    "error": "error message or skip reason",
}

#: Columns that hold lists (raw samples): in results.jsonl only. The compile samples: one
#: value per cold compile, the whole compile and each phase.
COMPILE_SAMPLE_COLUMNS = (
    "cold_compile_samples_s",
    "trace_samples_s",
    "lower_samples_s",
    "compile_samples_s",
)
SAMPLE_COLUMNS = ("samples_s", "sync_samples_s", *COMPILE_SAMPLE_COLUMNS)
#: The compile phases, in order; their sum is a configuration's compile time.
COMPILE_COLUMNS = ("trace_s", "lower_s", "compile_s")
#: Figures that do not depend on timing: equal code gives equal figures on one machine.
DETERMINISTIC_COLUMNS = (
    "recompiles",
    "hlo_ops",
    "hlo_fusions",
    "launches_per_call",
    "xla_flops",
    "bytes_accessed",
    "peak_memory_bytes",
)
#: What a step costs a configuration, besides its time.
WORK_COLUMNS = ("steps_per_call", "work_multiplier")
#: The step-time summary of a row.
STEP_COLUMNS = (
    "n_samples",
    "step_median_s",
    "step_ci_low_s",
    "step_ci_high_s",
    "sync_step_median_s",
)
#: In ``repeats.jsonl``: which pass (from 0) a row measured.
PASS_COLUMN = "pass"

METADATA_KEYS = (
    "schema_version",
    "run_id",
    "tool_version",
    "python",
    "jax",
    "jaxlib",
    "numpy",
    "software",  # {packages: {name: version}, torch: {version, build, cuda, ...}, jax_environment}
    "arithmetic",  # {precisions: [...], grad_layouts: [...]}: what the run's matmuls computed in
    "backends",  # {backend: {platform_version, device_kind, device_count, memory_bytes (the
    # device's own, where known), allocator_limit_bytes (what JAX's allocator may use)}}
    "cpu",  # {model, cores, memory_bytes}
    "env",  # XLA_* and JAX_* variables
    "git",  # {commit, dirty}
    "host",
    "hardware_fingerprint",
    "start_time",
    "end_time",
    "command",
    "preset",
    "peaks",  # {backend: {dtype: {matmul_flops_per_s, bandwidth_bytes_per_s}}}: the best of
    "peaks_measured",  # [peaks at the start, peaks at the end]: each measured in a fresh worker
    "dataset",  # {name, real, source}
    "skipped",  # [{what, reason}]
    "doctor",  # python -m bench doctor's findings: {hardware, accelerator, backends, versions,
    # torch, jax_said, problems: [{severity, problem, fix}]}
    "n_processes",
    "global_devices",
    "local_devices",
)


class SchemaError(ValueError):
    """A results file this version of the tool cannot read."""


def legacy_arithmetic(row: dict[str, Any]) -> dict[str, str]:
    """What a row written before :data:`ARITHMETIC_COLUMNS` existed was measured with: float32
    matmuls at full precision on CPU and the backend's default elsewhere; JAX's bfloat16 with
    bfloat16 operands in the forward matmuls only; the tuned layout for JAX's float32 rows."""
    jax = (row.get("framework") or "jax") == "jax"
    if row.get("dtype") == "bfloat16":
        precision = "bf16-forward" if jax else "bf16"
    else:
        precision = "highest" if row.get("backend") in (None, "cpu") else "default"
    layout = "tuned" if jax and row.get("dtype") != "bfloat16" else "stock"
    return {"precision": precision, "grad_layout": layout, "compile_options": "standard"}


def arithmetic(row: dict[str, Any]) -> dict[str, str]:
    """The row's :data:`ARITHMETIC_COLUMNS`, each missing one read as the legacy value."""
    legacy = legacy_arithmetic(row)
    return {k: _given(row.get(k)) or legacy[k] for k in ARITHMETIC_COLUMNS}


def _given(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def config_id(row: dict[str, Any]) -> str:
    """Stable 12-hex-digit id of a configuration from its key columns; an arithmetic column is
    hashed only where it differs from the legacy value, so rows written before it existed keep
    their ids and match the rows measured the same way since."""
    key = [str(row.get(k)) for k in BASE_KEY_COLUMNS]
    legacy = legacy_arithmetic(row)
    key += [f"{k}={v}" for k, v in arithmetic(row).items() if v != legacy[k]]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]


def check_version(version: Any, where: str) -> None:
    if version not in READABLE_VERSIONS:
        raise SchemaError(
            f"{where}: results schema version {version!r} is not one this tool reads "
            f"(it reads {', '.join(map(str, READABLE_VERSIONS))}); re-run the benchmark with "
            "this version, or use the version of mnist-kernels-bench that wrote it"
        )


def clean(value: Any) -> Any:
    """JSON-ready Python value: NumPy scalars unwrapped; NaN, infinities and pd.NA become None."""
    if value is None or isinstance(value, (list, tuple, dict, str)):
        return value
    if hasattr(value, "item"):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def jsonable(value: Any) -> Any:
    """:func:`clean` applied through dicts, lists and tuples: a value ``json.dumps`` writes as
    standard JSON (no NaN), with NumPy scalars as plain numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return clean(value)
