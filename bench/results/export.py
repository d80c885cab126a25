"""A run directory in another benchmark tool's format: the documents ``python -m bench export``
writes (one JSON document per format; the command only picks the format and the file).

Only rows whose ``status`` is ``ok`` are exported; every other row is left out and named in
:attr:`Export.left_out` with its status and error. Each configuration gets a label that names
it and is unique in the document (:func:`labels`): ``jit update 784,10 b128 float32 1dev cpu``;
the arithmetic columns where they are not the usual ones (``stock``, ``tf32``,
``fast-compile``, ``default``: as ``bench compare`` prints them), the framework before a peer
whose variant does not name it, ``2proc`` after a run over several processes, and
`` [config_id]`` after a label that two configurations would otherwise share.

**github-action-benchmark** (benchmark-action/github-action-benchmark, ``tool:
customSmallerIsBetter``): a JSON array with one object per configuration, as the action's
``BenchmarkResult`` schema reads it:

- ``name`` (str): the label;
- ``unit`` (str): ``"ms"``, milliseconds per step (one SGD step; for ``predict``, one call;
  ``scan`` and ``epoch`` rows divide a call by the steps it makes). A unit the action knows, so
  it can rescale a series written in ``s``, ``us`` or ``ns``;
- ``value`` (number): ``step_median_s`` in ms, the median of the pipelined samples;
- ``range`` (str, where the run has an interval): ``"± X"``, X in ms the larger half of the 95%
  interval of the median (the interval is asymmetric; the action reads only ``± X`` or ``+- X``,
  and rescales X with the value); the interval itself, with its exact coverage
  (``step_ci_level``: less than 95% below 6 samples), is in ``extra``;
- ``extra`` (str): ``config_id``, the commit (``(dirty)`` when the tree had changes), the
  machine (hardware fingerprint, host, CPU), the number of samples, the interval and the run.

With ``include=("compile",)`` each configuration with a compile time gets a second entry,
``"<label> compile"``: the cold compile (trace + lower + compile, caches cleared;
``cold_compile_s``, or the sum of its phases in a run written before compiles were repeated)
in ms, with its interval as the range.

**pytest-benchmark**: a save file (``--benchmark-json``'s layout) that ``pytest-benchmark
compare`` lists and ``python -m bench compare`` reads (:mod:`bench.results.pytest_benchmark`):
``machine_info`` (from the metadata: ``node`` the host, ``cpu.brand_raw``/``count`` its CPU,
``python_version``, plus ``hardware_fingerprint``, ``jax``, ``jaxlib`` and ``backends``),
``commit_info`` (``id``, ``dirty`` from ``metadata["git"]``), ``datetime`` (the run's end),
``version`` and one benchmark per configuration: ``group`` (``kernel layers bBATCH dtype
backend``: the variants of one workload side by side), ``name`` and ``param`` (the label),
``fullname`` (``mnist-kernels-bench::<label>``, what two such files are matched on),
``params`` (the key columns), ``extra_info`` (the key columns of :mod:`bench.results.schema`
with the arithmetic resolved, ``steps_per_call``, ``work_multiplier``, ``config_id``, the
deterministic figures, ``run_id`` and ``timing``), ``options`` and ``stats``.

Times are **seconds per call**, as pytest-benchmark's rounds are (``stats.data`` holds every
sample: the mean of ``iterations`` = ``loops_per_sample`` back-to-back calls), and
``extra_info["steps_per_call"]`` is the steps one call makes: the per-step samples
(``samples_s``) are multiplied by it here, and the reader divides by it again, so a round trip
gives back the run's per-step times (to rounding) and its true ``steps_per_call``; a ``scan``
benchmark shows ``pytest-benchmark compare`` the time of its 8 steps. ``stats`` are computed
from those samples with pytest-benchmark's own formulas (:func:`pytest_stats`); their median is
the run's ``step_median_s`` times ``steps_per_call``, since the run's median is of the same
samples.

``timing="synced"`` writes the samples with a sync after every call (``sync_samples_s``,
``iterations`` 1) instead of the pipelined ones: what pytest-benchmark itself times, and what
``bench compare`` takes from a run directory compared with a pytest-benchmark file, so
``bench compare EXPORTED.json RUN_DIR`` is like for like only with it.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import rundir, schema

GITHUB_ACTION_BENCHMARK, PYTEST_BENCHMARK = "github-action-benchmark", "pytest-benchmark"
FORMATS = (GITHUB_ACTION_BENCHMARK, PYTEST_BENCHMARK)
#: extra entries ``github-action-benchmark`` can add.
INCLUDES = ("compile",)
#: the samples a pytest-benchmark export holds: pipelined (the run's headline) or synced.
TIMINGS = ("pipelined", "synced")
#: the unit of every github-action-benchmark value and range.
GAB_UNIT = "ms"
_MS = 1e3
#: the pytest-benchmark release whose save-file layout and statistics this writes (its readers
#: do not check the version).
PYTEST_BENCHMARK_VERSION = "5.3.1"
#: prefix of each pytest-benchmark ``fullname``.
FULLNAME_PREFIX = "mnist-kernels-bench::"
#: arithmetic values a label leaves out: the usual ones.
_USUAL_ARITHMETIC = ("highest", "bf16", "tuned", "standard")


class ExportError(ValueError):
    """The run cannot be exported as asked; the message says why and what to do."""


@dataclasses.dataclass
class Export:
    """A run in another tool's format.

    Attributes:
      document: the JSON document (dicts, lists, strings, finite numbers).
      written: configurations in it.
      left_out: ``(label, why)`` for every configuration of the run that is not in it.
      unit: what its times are, in words.
      notes: anything else the person exporting should know (entries not added, and why).
    """

    document: Any
    written: int
    left_out: list[tuple[str, str]]
    unit: str
    notes: list[str] = dataclasses.field(default_factory=list)


def export(
    run_dir: str | Path,
    fmt: str,
    *,
    include: Sequence[str] = (),
    timing: str | None = None,
) -> Export:
    """Read ``run_dir`` and return it in format ``fmt`` (one of :data:`FORMATS`).

    Raises:
      FileNotFoundError: ``run_dir`` is not a run directory.
      schema.SchemaError: its files are of a schema this tool does not read.
      ExportError: an unknown format, include or timing; one that does not apply to ``fmt``;
        or a run with no configuration to export.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; pick one of {', '.join(FORMATS)}")
    if fmt != GITHUB_ACTION_BENCHMARK and include:
        raise ExportError(
            f"--include {','.join(include)} applies to {GITHUB_ACTION_BENCHMARK} only; a "
            f"{fmt} file holds one timing per benchmark; drop --include"
        )
    if timing is None:  # like for like: pytest-benchmark times a call synced, as compare reads it
        timing = "synced" if fmt == PYTEST_BENCHMARK else "pipelined"
    if fmt != PYTEST_BENCHMARK and timing != "pipelined":
        raise ExportError(
            f"--timing {timing} applies to {PYTEST_BENCHMARK} only; {fmt} gets the pipelined "
            "step medians with their intervals: drop --timing"
        )
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(
            f"{run_dir} is not a directory; pass a run directory written by `python -m bench run`"
        )
    meta = rundir.load_metadata(run_dir)
    rows = rundir.load(run_dir, samples=True)
    if fmt == GITHUB_ACTION_BENCHMARK:
        out = github_action_benchmark(rows, meta, include=include)
    else:
        out = pytest_benchmark(rows, meta, timing=timing)
    if not out.written:
        why = "; ".join(f"{label}: {reason}" for label, reason in out.left_out[:3]) or "no rows"
        raise ExportError(
            f"{run_dir} has no configuration to export ({len(out.left_out)} left out: {why}); "
            "export a run whose configurations finished ok"
        )
    return out


def dumps(document: Any) -> str:
    """The document as JSON text (standard JSON: no NaN), ending in a newline."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


# --- rows and their labels ------------------------------------------------------------------


def records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts of plain Python values (NumPy scalars unwrapped, NaN as None)."""
    return [{k: schema.clean(v) for k, v in r.items()} for r in rows.to_dict(orient="records")]


def _int_or_text(value: Any) -> Any:
    """``128`` for 128.0 (a column pandas read as float), the value itself otherwise."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label(row: dict[str, Any]) -> str:
    """``variant kernel layers bBATCH dtype [arithmetic] Ndev backend`` (see the module
    docstring); not unique by itself, :func:`labels` makes it so."""
    fw = row.get("framework") or "jax"
    shown = [v for v in schema.arithmetic(row).values() if v not in _USUAL_ARITHMETIC]
    if row.get("variant") == "notebook" or fw != "jax":
        shown = [v for v in shown if v != "stock"]  # their one layout
    parts = [
        str(row.get("variant")),
        str(row.get("kernel")),
        str(row.get("layer_sizes")).replace(" ", ""),
        f"b{_int_or_text(row.get('batch_size'))}",
        str(row.get("dtype")),
        *shown,
        f"{_int_or_text(row.get('n_devices'))}dev",
        str(row.get("backend")),
    ]
    procs = _int_or_text(row.get("n_processes"))
    if procs not in (None, 1):
        parts.append(f"{procs}proc")
    text = " ".join(parts)
    named = fw == "jax" or str(row.get("variant")).startswith(str(fw))
    return text if named else f"{fw}:{text}"


def labels(rows: list[dict[str, Any]]) -> list[str]:
    """:func:`label` of each row, with `` [config_id]`` after each label two rows share."""
    plain = [label(r) for r in rows]
    seen: dict[str, int] = {}
    for text in plain:
        seen[text] = seen.get(text, 0) + 1
    return [
        f"{text} [{r.get('config_id') or schema.config_id(r)}]" if seen[text] > 1 else text
        for text, r in zip(plain, rows, strict=True)
    ]


def _split(
    rows: pd.DataFrame, needs: tuple[str, str] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """``(label, row)`` of the rows to export and ``(label, why)`` of the others: those whose
    status is not ok, and (``needs``: column, what it is) those without that figure."""
    recs = records(rows)
    keep, left_out = [], []
    for text, row in zip(labels(recs), recs, strict=True):
        status = row.get("status")
        if status != "ok":
            error = row.get("error")
            left_out.append((text, f"{status}: {error}" if error else str(status)))
        elif needs is not None and not _has(row.get(needs[0])):
            left_out.append((text, f"no {needs[1]} ({needs[0]})"))
        else:
            keep.append((text, row))
    return keep, left_out


def _has(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _commit(meta: dict[str, Any]) -> str:
    git = meta.get("git") or {}
    commit = git.get("commit") or "unknown"
    return f"{commit} (dirty)" if git.get("dirty") else str(commit)


def _machine(meta: dict[str, Any]) -> str:
    cpu = meta.get("cpu") or {}
    cpu_text = cpu.get("model") if isinstance(cpu, dict) else cpu
    if isinstance(cpu, dict) and cpu.get("cores"):
        cpu_text = f"{cpu_text or '?'}, {cpu['cores']} cores"
    fp = meta.get("hardware_fingerprint") or "?"
    return f"{fp} (host {meta.get('host') or '?'}, {cpu_text or 'cpu ?'})"


# --- github-action-benchmark ----------------------------------------------------------------


def github_action_benchmark(
    rows: pd.DataFrame, meta: dict[str, Any], *, include: Sequence[str] = ()
) -> Export:
    """The rows as a ``customSmallerIsBetter`` array (see the module docstring).

    Args:
      rows: a run's rows (:func:`bench.results.rundir.load`).
      meta: its metadata (:func:`bench.results.rundir.load_metadata`).
      include: extra entries per configuration, from :data:`INCLUDES`.

    Raises:
      ExportError: an unknown include.
    """
    unknown = [i for i in include if i not in INCLUDES]
    if unknown:
        raise ExportError(
            f"unknown --include {', '.join(unknown)}; pick from {', '.join(INCLUDES)}"
        )
    keep, left_out = _split(rows, ("step_median_s", "step median"))
    common = f"commit: {_commit(meta)}\nmachine: {_machine(meta)}\nrun: {meta.get('run_id')}"
    entries, no_compile = [], []
    for text, row in keep:
        n = _int_or_text(row.get("n_samples"))
        entries.append(
            _gab_entry(
                text,
                row["step_median_s"],
                (row.get("step_ci_low_s"), row.get("step_ci_high_s"), row.get("step_ci_level")),
                f"config_id: {row.get('config_id')}\nmedian step time of {n} samples",
                common,
            )
        )
        if "compile" in include:
            entry = _gab_compile_entry(text, row, common)
            if entry is None:
                no_compile.append(text)
            else:
                entries.append(entry)
    notes = []
    if "compile" in include:
        notes.append(
            f"{len(entries)} entries: each configuration's step time, and its compile time"
        )
    if no_compile:
        notes.append(
            f"{len(no_compile)} configuration(s) have no compile time recorded (e.g. "
            f"{no_compile[0]}): no compile entry for them"
        )
    unit = f"{GAB_UNIT} per step (median), range ± the larger half of its 95% interval"
    return Export(entries, len(keep), left_out, unit, notes)


def _gab_entry(
    name: str, value_s: float, interval_s: tuple[Any, Any, Any], what: str, common: str
) -> dict[str, Any]:
    """One ``{name, unit, value, range, extra}`` object; times in, seconds; out, ms.
    ``interval_s``: the low and high ends and the exact coverage (None: 95%, nominal)."""
    entry: dict[str, Any] = {"name": name, "unit": GAB_UNIT, "value": value_s * _MS}
    lo, hi, level = interval_s
    if _has(lo) and _has(hi):
        half = max(value_s - lo, hi - value_s, 0.0) * _MS
        entry["range"] = f"± {half:.6g}"
        cover = f"{level * 100:.4g}%" if _has(level) else "95%"
        what += f", {cover} interval [{lo * _MS:.6g}, {hi * _MS:.6g}] {GAB_UNIT}"
    entry["extra"] = f"{what}\n{common}"
    return entry


def _gab_compile_entry(text: str, row: dict[str, Any], common: str) -> dict[str, Any] | None:
    """The ``<label> compile`` entry of a row, or None when it has no compile time."""
    cold = row.get("cold_compile_s")
    if _has(cold):
        interval = tuple(row.get(f"cold_compile_ci_{k}") for k in ("low_s", "high_s", "level"))
        n = _int_or_text(row.get("n_compiles"))
        what = f"config_id: {row.get('config_id')}\ncold compile, median of {n or '?'}"
    else:
        phases = [row.get(c) for c in schema.COMPILE_COLUMNS]
        if not any(_has(p) for p in phases):
            return None
        cold = sum(p for p in phases if _has(p))
        interval = (None, None, None)
        what = f"config_id: {row.get('config_id')}\ncold compile (trace + lower + compile)"
    return _gab_entry(f"{text} compile", float(cold), interval, what, common)


# --- pytest-benchmark -----------------------------------------------------------------------


def pytest_stats(data: Sequence[float], iterations: int = 1) -> dict[str, Any]:
    """pytest-benchmark's ``stats`` of a benchmark from its rounds' times (seconds each, at
    least one), by the formulas of its ``Stats`` class: the same quartiles (Tukey's fences for
    ``ld15iqr``/``hd15iqr``/``iqr_outliers``), ``ops`` = rounds / total."""
    x = sorted(data)
    n = len(x)
    mean = statistics.mean(x)
    stddev = statistics.stdev(x) if n > 1 else 0
    q1, q3 = _quartiles(x)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_outliers = sum(1 for v in x if v < low or v > high)
    stddev_outliers = sum(1 for v in x if v < mean - stddev or v > mean + stddev)
    total = sum(data)
    return {
        "min": x[0],
        "max": x[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(x),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": x[0] if n == 1 else x[bisect_left(x, low)],
        "hd15iqr": x[0] if n == 1 else x[bisect_right(x, high) - 1],
        "ops": n / total if total else 0,
        "total": total,
        "data": list(data),
        "iterations": int(iterations),
    }


def _quartiles(x: list[float]) -> tuple[float, float]:
    """Q1 and Q3 of sorted ``x`` as pytest-benchmark computes them (Wikipedia's method 2 for an
    even count, method 3 for an odd one)."""
    n = len(x)
    if n == 1:
        return x[0], x[0]
    if n % 2 == 0:
        return statistics.median(x[: n // 2]), statistics.median(x[n // 2 :])
    k, r = n // 4, n % 4
    if r == 1:
        return 0.25 * x[k - 1] + 0.75 * x[k], 0.75 * x[3 * k] + 0.25 * x[3 * k + 1]
    return 0.75 * x[k] + 0.25 * x[k + 1], 0.25 * x[3 * k + 1] + 0.75 * x[3 * k + 2]


def pytest_benchmark(
    rows: pd.DataFrame, meta: dict[str, Any], *, timing: str = "pipelined"
) -> Export:
    """The rows as a pytest-benchmark save file (see the module docstring).

    Args:
      rows: a run's rows with their samples (``rundir.load(run_dir, samples=True)``).
      meta: its metadata.
      timing: ``pipelined`` (``samples_s``) or ``synced`` (``sync_samples_s``).

    Raises:
      ExportError: an unknown timing.
    """
    if timing not in TIMINGS:
        raise ExportError(f"unknown timing {timing!r}; pick one of {', '.join(TIMINGS)}")
    column = "samples_s" if timing == "pipelined" else "sync_samples_s"
    keep, left_out = _split(rows, (column, f"raw {timing} samples"))
    benchmarks = [_pb_benchmark(text, row, column, meta) for text, row in keep]
    document = {
        "machine_info": machine_info(meta),
        "commit_info": commit_info(meta),
        "benchmarks": benchmarks,
        "datetime": meta.get("end_time") or meta.get("start_time"),
        "version": PYTEST_BENCHMARK_VERSION,
        "exported_by": {
            "tool": "mnist-kernels-bench",
            "tool_version": meta.get("tool_version"),
            "run_id": meta.get("run_id"),
            "timing": timing,
        },
    }
    unit = f"s per call ({timing} samples; extra_info.steps_per_call steps a call)"
    return Export(document, len(benchmarks), left_out, unit)


def _pb_benchmark(text: str, row: dict[str, Any], column: str, meta: dict[str, Any]) -> dict:
    """One entry of ``benchmarks``: per-call times from the row's per-step samples."""
    steps = _int_or_text(row.get("steps_per_call")) or 1
    synced = column == "sync_samples_s"
    iterations = 1 if synced else _int_or_text(row.get("loops_per_sample")) or 1
    keys = {k: _int_or_text(row.get(k)) for k in schema.KEY_COLUMNS}
    keys.update(schema.arithmetic(row))
    extra = dict(keys)
    for k in (*schema.WORK_COLUMNS, *schema.DETERMINISTIC_COLUMNS):
        extra[k] = _int_or_text(row.get(k))
    extra["steps_per_call"] = steps
    extra.update(
        config_id=row.get("config_id"),
        run_id=row.get("run_id") or meta.get("run_id"),
        timing="synced" if synced else "pipelined",
    )
    return {
        "group": f"{keys['kernel']} {keys['layer_sizes']} b{keys['batch_size']} "
        f"{keys['dtype']} {keys['backend']}",
        "name": text,
        "fullname": FULLNAME_PREFIX + text,
        "params": keys,
        "param": text,
        "extra_info": extra,
        "options": {
            "disable_gc": False,
            "timer": "perf_counter",
            "min_rounds": len(row[column]),
            "max_time": None,
            "min_time": None,
            "warmup": True,
        },
        "stats": pytest_stats([float(v) * steps for v in row[column]], iterations),
    }


def machine_info(meta: dict[str, Any]) -> dict[str, Any]:
    """pytest-benchmark's ``machine_info`` from a run's metadata, the fields it knows (``node``,
    ``machine``, ``python_version``, ``cpu.brand_raw``, ``cpu.count``) plus the run's own
    machine figures."""
    cpu = meta.get("cpu") if isinstance(meta.get("cpu"), dict) else {}
    arch = cpu.get("arch") or ""
    return {
        "node": meta.get("host"),
        "processor": arch,
        "machine": arch,
        "python_version": meta.get("python"),
        "cpu": {
            "brand_raw": cpu.get("model"),
            "count": cpu.get("cores"),
            "arch_string_raw": arch,
            "memory_bytes": cpu.get("memory_bytes"),
        },
        "hardware_fingerprint": meta.get("hardware_fingerprint"),
        "jax": meta.get("jax"),
        "jaxlib": meta.get("jaxlib"),
        "backends": schema.jsonable(meta.get("backends")),
    }


def commit_info(meta: dict[str, Any]) -> dict[str, Any]:
    """pytest-benchmark's ``commit_info`` from ``metadata["git"]``: ``id`` (``unknown`` when
    the run recorded none, as pytest-benchmark writes it) and ``dirty``."""
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    return {"id": git.get("commit") or "unknown", "dirty": git.get("dirty")}
