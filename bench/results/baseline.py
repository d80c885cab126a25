"""The baseline file: one compact baseline per machine (``python -m bench baseline``).

A baseline is the part of a run that ``bench compare`` needs, in one JSON file named after the
machine's hardware fingerprint: ``reports/baselines/<hardware_fingerprint>.json``. It holds
the medians, the raw per-step samples (rounded to 6 significant digits), the compile times and
the deterministic figures of every configuration, plus a subset of the run's metadata.
``python -m bench compare --baseline auto CURRENT`` picks the file whose name is CURRENT's
fingerprint; a baseline file also works as compare's BASELINE argument.

File layout (one row per line, so that a diff shows what changed)::

    {"kind": "mnist-kernels-bench baseline", "baseline_version": 1, "schema_version": 1,
     "fingerprint": "...", "created": "...", "source": "reports/<run-id>",
     "metadata": {...}, "rows": [{...}, ...]}
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import rundir, schema

KIND = "mnist-kernels-bench baseline"
BASELINE_VERSION = 1
#: baseline format versions this code reads.
READABLE_BASELINE_VERSIONS = (1,)
DEFAULT_DIR = Path("reports") / "baselines"

#: metadata keys copied into a baseline: the machine, versions and run, not its details.
METADATA_SUBSET = tuple(
    k
    for k in schema.METADATA_KEYS
    if k
    not in ("env", "end_time", "command", "peaks", "peaks_measured", "skipped", "local_devices")
)

#: per-row columns kept, besides the key columns and ``config_id``.
ROW_COLUMNS = (
    "status",
    "error",
    *schema.WORK_COLUMNS,
    *schema.STEP_COLUMNS,
    *schema.COMPILE_COLUMNS,
    "cold_compile_s",
    "n_compiles",
    "first_call_s",
    *schema.DETERMINISTIC_COLUMNS,
    "repeats",
    "pass_medians_s",  # the process-level evidence compare judges by
    "pass_cold_compile_s",  # and of compile time
)
SAMPLE_DIGITS = 6


def _listed(value: Any) -> Any:
    """A NumPy array (as pandas hands list columns back) as a list."""
    return value.tolist() if isinstance(value, np.ndarray) else value


class BaselineError(ValueError):
    """A baseline that cannot be saved or found; the message says what to do."""


def _samples(value: Any) -> list[float] | None:
    if value is None or isinstance(value, (str, float, int)):
        return None
    out = []
    for x in value:
        x = float(x)
        if math.isfinite(x):
            out.append(float(f"{x:.{SAMPLE_DIGITS}g}"))
    return out


def safe_name(fingerprint: str) -> str:
    """File-name-safe form of a fingerprint (anything but ``[A-Za-z0-9._-]`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(fingerprint)) or "_"


def path_for(fingerprint: str, directory: str | Path = DEFAULT_DIR) -> Path:
    """Where the baseline of the machine with ``fingerprint`` lives."""
    return Path(directory) / f"{safe_name(fingerprint)}.json"


def build(run_dir: str | Path) -> dict[str, Any]:
    """The baseline document of a run directory (see the module docstring).

    Raises:
      FileNotFoundError, schema.SchemaError: not a readable run directory.
      BaselineError: the run's metadata has no hardware fingerprint.
    """
    meta = rundir.load_metadata(run_dir)
    df = rundir.load(run_dir, samples=True)
    fp = meta.get("hardware_fingerprint")
    if not fp:
        raise BaselineError(
            f"{Path(run_dir) / 'metadata.json'} has no hardware_fingerprint, so the baseline "
            "cannot be filed under this machine; re-run `python -m bench run` with this version"
        )
    rows = []
    for rec in df.to_dict(orient="records"):
        row = {k: schema.clean(rec.get(k)) for k in schema.KEY_COLUMNS}
        row["config_id"] = schema.clean(rec.get("config_id")) or schema.config_id(rec)
        row.update({k: schema.jsonable(_listed(rec.get(k))) for k in ROW_COLUMNS})
        for col in schema.SAMPLE_COLUMNS:
            row[col] = _samples(rec.get(col))
        rows.append(row)
    return {
        "kind": KIND,
        "baseline_version": BASELINE_VERSION,
        "schema_version": schema.SCHEMA_VERSION,
        "fingerprint": fp,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": str(run_dir),
        "metadata": {k: meta.get(k) for k in METADATA_SUBSET if k in meta},
        "rows": rows,
    }


def dumps(doc: dict[str, Any]) -> str:
    """The baseline as text: header keys one per line, then one row per line."""
    lines = ["{"]
    for k, v in doc.items():
        if k != "rows":
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    rows = doc.get("rows", [])
    lines.append('  "rows": [')
    lines.append(",\n".join("    " + json.dumps(r) for r in rows))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save(run_dir: str | Path, directory: str | Path = DEFAULT_DIR) -> Path:
    """Write the baseline of ``run_dir`` to ``<directory>/<fingerprint>.json``; returns the path."""
    doc = build(run_dir)
    out = path_for(doc["fingerprint"], directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(dumps(doc))
    tmp.replace(out)
    return out


def is_baseline(doc: Any) -> bool:
    """Whether a parsed JSON document is a baseline file."""
    return isinstance(doc, dict) and doc.get("kind") == KIND


def from_document(doc: dict[str, Any], where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows (a DataFrame with the schema's columns) and metadata of a parsed baseline."""
    version = doc.get("baseline_version")
    if version not in READABLE_BASELINE_VERSIONS:
        raise schema.SchemaError(
            f"{where}: baseline format version {version!r} is not one this tool reads (it "
            f"reads {', '.join(map(str, READABLE_BASELINE_VERSIONS))}); save the baseline again "
            "with `python -m bench baseline save RUN_DIR`"
        )
    schema.check_version(doc.get("schema_version"), where)
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise schema.SchemaError(f"{where}: baseline has no 'rows' list; save it again")
    df = rundir.frame(rows)
    meta = dict(doc.get("metadata") or {})
    meta["hardware_fingerprint"] = doc.get("fingerprint") or meta.get("hardware_fingerprint")
    meta["baseline_created"] = doc.get("created")
    meta["baseline_source"] = doc.get("source")
    return df, meta


def load(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows and metadata of a baseline file.

    Raises:
      FileNotFoundError: no such file.
      schema.SchemaError: not JSON, not a baseline, or a version this tool does not read.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise schema.SchemaError(f"{path}: not valid JSON ({e})") from e
    if not is_baseline(doc):
        raise schema.SchemaError(f'{path}: not a baseline file (no "kind": {KIND!r})')
    return from_document(doc, str(path))


def available(directory: str | Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    """Summaries of the baselines in ``directory``: path, fingerprint, host, cpu, created, rows."""
    out = []
    for p in sorted(Path(directory).glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            out.append({"path": str(p), "fingerprint": p.stem, "error": str(e)})
            continue
        if not is_baseline(doc):
            continue
        meta = doc.get("metadata") or {}
        cpu = meta.get("cpu") or {}
        out.append(
            {
                "path": str(p),
                "fingerprint": doc.get("fingerprint", p.stem),
                "host": meta.get("host"),
                "cpu": cpu.get("model") if isinstance(cpu, dict) else cpu,
                "created": doc.get("created"),
                "source": doc.get("source"),
                "rows": len(doc.get("rows") or []),
            }
        )
    return out


def find(fingerprint: str | None, directory: str | Path = DEFAULT_DIR) -> Path:
    """The baseline file for ``fingerprint`` in ``directory``.

    Raises:
      BaselineError: there is none; the message lists the fingerprints that exist.
    """
    if not fingerprint:
        raise BaselineError(
            "CURRENT has no hardware fingerprint, so --baseline auto cannot pick a baseline; "
            "pass the baseline file as BASELINE instead"
        )
    path = path_for(fingerprint, directory)
    if path.exists():
        return path
    have = available(directory)
    listing = (
        "\n".join(f"  {b['fingerprint']}  ({b.get('host') or '?'}, {b['path']})" for b in have)
        if have
        else "  (none)"
    )
    raise BaselineError(
        f"no baseline for this machine (hardware fingerprint {fingerprint}) in {directory}: "
        f"{path} does not exist. Baselines there:\n{listing}\n"
        "Save one with `python -m bench baseline save RUN_DIR`, or pass BASELINE explicitly."
    )
