"""The two sides of a comparison: a run directory, a baseline file or a pytest-benchmark file
read into a :class:`Side`, and rows matched by configuration (:func:`index`)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..results import baseline as baseline_mod
from ..results import pytest_benchmark, rundir, schema

RUN, BASELINE, PYTEST_BENCHMARK = "run", "baseline", "pytest-benchmark"

#: key columns rows are matched on (device_kind is the hardware check's business).
MATCH_COLUMNS = tuple(c for c in schema.KEY_COLUMNS if c != "device_kind")


class InputError(Exception):
    """Bad input for compare (exit code 2); the message says what was wrong and what to do."""


@dataclasses.dataclass
class Side:
    """One side of a comparison.

    Attributes:
      path: where it was read from.
      kind: ``run``, ``baseline`` or ``pytest-benchmark``.
      rows: one row per configuration, the columns of :mod:`bench.results.schema` plus ``samples_s``
        and ``sync_samples_s`` (raw per-step times, seconds) and, for pytest-benchmark, ``name``.
      metadata: ``metadata.json`` or its equivalent.
    """

    path: str
    kind: str
    rows: pd.DataFrame
    metadata: dict[str, Any]

    @property
    def fingerprint(self) -> str | None:
        fp = self.metadata.get("hardware_fingerprint")
        return str(fp) if fp else None

    def machine(self) -> str:
        """The machine in words: host, CPU and accelerators, as far as the metadata tells."""
        meta = self.metadata
        parts = [f"host {meta.get('host') or '?'}"]
        cpu = meta.get("cpu")
        if isinstance(cpu, dict):
            model = cpu.get("model") or "?"
            cores = cpu.get("cores")
            parts.append(f"cpu {model}" + (f" ({cores} cores)" if cores else ""))
        elif cpu:
            parts.append(f"cpu {cpu}")
        backends = meta.get("backends")
        if isinstance(backends, dict):
            for name, info in backends.items():
                if isinstance(info, dict):
                    count = info.get("device_count")
                    kind = info.get("device_kind") or "?"
                    parts.append(f"{name}: {count}x {kind}" if count else f"{name}: {kind}")
        return ", ".join(parts)


def load_input(path: str | Path) -> Side:
    """Read a run directory, a baseline file or a pytest-benchmark JSON file.

    Raises:
      InputError: missing, unreadable, of the wrong schema, or without rows.
    """
    p = Path(path)
    hint = (
        "pass a run directory written by `python -m bench run`, a baseline file "
        "(`python -m bench baseline save`) or a JSON file saved by pytest-benchmark"
    )
    if not p.exists():
        raise InputError(f"{p} does not exist; {hint}")
    if p.is_file() and p.name == "results.jsonl":
        p = p.parent
    try:
        if p.is_dir():
            if not (p / "results.jsonl").exists():
                raise InputError(f"{p} is a directory without results.jsonl; {hint}")
            meta = rundir.load_metadata(p)
            rows = rundir.load(p, samples=True)
            kind = RUN
        else:
            try:
                doc = json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise InputError(f"{p} is not valid JSON ({e}); {hint}") from e
            if baseline_mod.is_baseline(doc):
                rows, meta = baseline_mod.from_document(doc, str(p))
                kind = BASELINE
            elif pytest_benchmark.is_pytest_benchmark(doc):
                rows, meta = pytest_benchmark.from_document(doc, str(p))
                kind = PYTEST_BENCHMARK
            else:
                raise InputError(
                    f"{p} is JSON but neither a baseline file nor a pytest-benchmark file; {hint}"
                )
    except InputError:
        raise
    except schema.SchemaError as e:
        raise InputError(str(e)) from e
    except FileNotFoundError as e:
        raise InputError(f"{e}") from e
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        raise InputError(f"{p}: cannot read it ({type(e).__name__}: {e}); {hint}") from e
    if rows.empty:
        raise InputError(f"{p} holds no results rows; nothing to compare")
    return Side(str(path), kind, rows, meta)


def resolve_baseline(current: Side, spec: str, directory: str | Path) -> str:
    """Path of the baseline: ``spec`` itself, or for ``auto`` the file for CURRENT's machine."""
    if spec != "auto":
        return spec
    try:
        return str(baseline_mod.find(current.fingerprint, directory))
    except baseline_mod.BaselineError as e:
        raise InputError(str(e)) from e


def num(value: Any) -> float | None:
    """A finite float, or None for missing, NaN or non-numbers."""
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def norm(value: Any) -> str | None:
    """Canonical text of a key value: ``784,10`` for layer lists, ``128`` for 128.0."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(str(norm(v)) for v in value)
    if isinstance(value, str):
        return value.replace(" ", "")
    f = num(value)
    if f is None:
        try:
            return None if pd.isna(value) else str(value)
        except (TypeError, ValueError):
            return str(value)
    return str(int(f)) if f.is_integer() else repr(f)


def samples(value: Any) -> np.ndarray:
    if value is None or isinstance(value, (str, float, int)):
        return np.empty(0)
    try:
        return stats.as_samples(list(value))
    except (TypeError, ValueError):
        return np.empty(0)


def config_label(row: dict[str, Any]) -> str:
    """``variant kernel layers bBATCH dtype [precision] [layout] Ndev`` (the arithmetic when it
    is not the usual one); a pytest-benchmark name without key columns."""
    if not has_key(row):
        name = str(norm(row.get("name")) or norm(row.get("config_id")) or "?")
        return name.rsplit("::", 1)[-1]
    arith = schema.arithmetic(row)
    shown = [v for v in arith.values() if v not in ("highest", "bf16", "tuned", "standard")]
    if row.get("variant") == "notebook" or (row.get("framework") or "jax") != "jax":
        shown = [v for v in shown if v != "stock"]  # their one layout
    label = (
        f"{row.get('variant')} {row.get('kernel')} {norm(row.get('layer_sizes'))} "
        f"b{norm(row.get('batch_size'))} {row.get('dtype')}"
        + "".join(f" {v}" for v in shown)
        + f" {norm(row.get('n_devices'))}dev"
    )
    fw = row.get("framework")
    if fw and fw != "jax":
        label = f"{fw}:{label}"
    procs = norm(row.get("n_processes"))
    if procs not in (None, "1"):
        label += f" {procs}proc"
    return label


def has_key(row: dict[str, Any]) -> bool:
    """Whether a row names its configuration (a pytest-benchmark row may only have a name)."""
    return norm(row.get("variant")) is not None and norm(row.get("kernel")) is not None


def key(row: dict[str, Any], by_name: bool) -> tuple[str | None, ...]:
    if by_name or not has_key(row):
        return ("name", norm(row.get("name")) or norm(row.get("config_id")))
    arith = schema.arithmetic(row)  # a row written before these columns: its legacy values
    return tuple(arith[c] if c in arith else norm(row.get(c)) for c in MATCH_COLUMNS)


def index(side: Side, by_name: bool) -> tuple[dict[tuple, dict[str, Any]], list[str]]:
    out: dict[tuple, dict[str, Any]] = {}
    dupes = []
    for rec in side.rows.to_dict(orient="records"):
        k = key(rec, by_name)
        if k in out:
            dupes.append(config_label(rec))
        out[k] = rec
    return out, dupes
