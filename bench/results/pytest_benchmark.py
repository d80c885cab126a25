"""Read a JSON file saved by pytest-benchmark into the table ``bench compare`` works on.

pytest-benchmark (``--benchmark-autosave``, ``--benchmark-save=NAME`` or
``--benchmark-json=FILE``) writes ``{"machine_info", "commit_info", "benchmarks", ...}``; each
benchmark has ``name``, ``fullname``, ``params``, ``extra_info`` and ``stats`` (times of one
call in seconds; ``stats.data``, the time of every round, only with ``--benchmark-save-data``).

Each benchmark becomes one row with the columns of :mod:`bench.results.schema`:

- the key columns come from ``extra_info`` when it holds them (the suite in ``benchmarks/``
  records ``framework``, ``variant``, ``kernel``, ``backend``, ``device_kind``,
  ``n_processes``, ``n_devices``, ``layer_sizes``, ``batch_size`` and ``dtype``), so such a
  file can be compared with a ``python -m bench run`` directory; otherwise they are empty and
  only ``name`` (the benchmark's ``fullname``) identifies the row;
- times are per step: divided by ``extra_info["steps_per_call"]`` when present (``scan``
  makes S steps a call), so they line up with the per-step times of a run;
- ``samples_s`` holds ``stats.data`` (per step) or ``None`` when the file has no raw data;
- ``status`` is ``ok``: pytest-benchmark does not save benchmarks that failed.

The machine's fingerprint is a hash of ``machine_info``'s CPU brand, CPU count and node (host)
name (:func:`fingerprint`); it differs from the one ``bench run`` records, so comparing such a
file with a run directory needs ``--allow-different-hardware`` to gate.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from . import rundir, schema

#: ``extra_info`` keys copied into a row besides the key columns (deterministic figures too).
EXTRA_COLUMNS = (*schema.WORK_COLUMNS, *schema.DETERMINISTIC_COLUMNS)


def is_pytest_benchmark(obj: Any) -> bool:
    """Whether a parsed JSON document looks like a pytest-benchmark save file."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("benchmarks"), list)
        and "machine_info" in obj
        and all(isinstance(b, dict) and "stats" in b for b in obj["benchmarks"])
    )


def fingerprint(machine_info: dict[str, Any]) -> str:
    """16-hex-digit hash of the CPU brand, CPU count and node name in ``machine_info``."""
    cpu = machine_info.get("cpu") or {}
    brand = cpu.get("brand_raw") or cpu.get("brand") or machine_info.get("processor") or ""
    key = json.dumps(
        ["pytest-benchmark", str(brand), str(cpu.get("count")), str(machine_info.get("node"))]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """A ``metadata.json``-like dict for a pytest-benchmark document (machine and versions)."""
    mi = doc.get("machine_info") or {}
    cpu = mi.get("cpu") or {}
    return {
        "schema_version": schema.SCHEMA_VERSION,
        # a file written by `bench export` carries the run's own fingerprint
        "hardware_fingerprint": mi.get("hardware_fingerprint") or fingerprint(mi),
        "host": mi.get("node"),
        "cpu": {"model": cpu.get("brand_raw") or cpu.get("brand"), "cores": cpu.get("count")},
        "python": mi.get("python_version"),
        "git": {
            "commit": (doc.get("commit_info") or {}).get("id"),
            "dirty": (doc.get("commit_info") or {}).get("dirty"),
        },
        "start_time": doc.get("datetime"),
        "pytest_benchmark_version": doc.get("version"),
    }


def _layers(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(str(int(v)) for v in value)
    return value


def to_row(bench: dict[str, Any]) -> dict[str, Any]:
    """One benchmark entry of the JSON as a results row (see the module docstring)."""
    extra = bench.get("extra_info") or {}
    stats = bench.get("stats") or {}
    steps = extra.get("steps_per_call") or 1
    try:
        steps = float(steps)
    except (TypeError, ValueError):
        steps = 1.0

    def per_step(key: str) -> float | None:
        v = stats.get(key)
        return None if v is None else float(v) / steps

    row: dict[str, Any] = {k: extra.get(k) for k in schema.KEY_COLUMNS}
    row["layer_sizes"] = _layers(row["layer_sizes"])
    for k in EXTRA_COLUMNS:
        row[k] = extra.get(k)
    row["schema_version"] = schema.SCHEMA_VERSION
    row["name"] = bench.get("fullname") or bench.get("name")
    has_key = row.get("variant") is not None and row.get("kernel") is not None
    row["config_id"] = (
        schema.config_id(row)
        if has_key
        else hashlib.sha256(str(row["name"]).encode()).hexdigest()[:12]
    )
    data = stats.get("data")
    row["samples_s"] = [float(x) / steps for x in data] if isinstance(data, list) and data else None
    row["step_median_s"] = per_step("median")
    row["step_min_s"] = per_step("min")
    row["step_mean_s"] = per_step("mean")
    row["step_std_s"] = per_step("stddev")
    row["step_iqr_s"] = per_step("iqr")
    row["n_samples"] = stats.get("rounds")
    row["loops_per_sample"] = stats.get("iterations")
    ok = stats and row["step_median_s"] is not None and math.isfinite(row["step_median_s"])
    row["status"] = "ok" if ok else "error"
    row["error"] = None if ok else "pytest-benchmark saved no statistics for this benchmark"
    return row


def load(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows and metadata of a pytest-benchmark JSON file.

    Raises:
      FileNotFoundError: no such file.
      schema.SchemaError: not JSON, or not a pytest-benchmark save file.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise schema.SchemaError(f"{path}: not valid JSON ({e})") from e
    return from_document(doc, str(path))


def from_document(doc: Any, where: str = "<json>") -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`load` for an already parsed document."""
    if not is_pytest_benchmark(doc):
        raise schema.SchemaError(
            f"{where}: not a pytest-benchmark file (expected a 'benchmarks' list whose entries "
            "have 'stats', and 'machine_info'); save one with `pytest --benchmark-autosave` or "
            "`--benchmark-json=FILE`"
        )
    return rundir.frame([to_row(b) for b in doc["benchmarks"]]), metadata(doc)
