"""The comparison behind `python -m bench compare`: inputs read into sides, rows matched by
configuration, a verdict per row, the failures that gate. The rules are in :mod:`bench.compare`;
:mod:`bench.compare_output` renders a :class:`Report`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import baseline as baseline_mod
from . import pytest_benchmark, schema, stats

RUN, BASELINE, PYTEST_BENCHMARK = "run", "baseline", "pytest-benchmark"

NEW, MISSING, ERROR = "new", "missing", "error"
#: verdicts in the order rows are listed.
VERDICT_ORDER = (stats.SLOWER, ERROR, MISSING, NEW, stats.FASTER, stats.SAME)

#: key columns rows are matched on (device_kind is the hardware check's business).
MATCH_COLUMNS = tuple(c for c in schema.KEY_COLUMNS if c != "device_kind")

COMPILE_PARTS = ("trace_s", "lower_s", "compile_s")
DEFAULT_COMPILE_FACTOR = 1.5

#: deterministic figures and their relative tolerance (0: exact).
DETERMINISTIC: dict[str, float] = {
    "recompiles": 0.0,
    "hlo_ops": 0.0,
    "hlo_fusions": 0.0,
    "xla_flops": 1e-6,
    "bytes_accessed": 1e-6,
    "peak_memory_bytes": 1e-6,
}

FAIL_ON_CHOICES = ("step", "compile", "hlo")


class InputError(Exception):
    """Bad input for compare (exit code 2); the message says what was wrong and what to do."""


# --------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class Side:
    """One side of a comparison.

    Attributes:
      path: where it was read from.
      kind: ``run``, ``baseline`` or ``pytest-benchmark``.
      rows: one row per configuration, the columns of :mod:`bench.schema` plus ``samples_s``
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
            meta = schema.load_metadata(p)
            rows = schema.load(p, samples=True)
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


# --------------------------------------------------------------------------- values


def _num(value: Any) -> float | None:
    """A finite float, or None for missing, NaN or non-numbers."""
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _norm(value: Any) -> str | None:
    """Canonical text of a key value: ``784,10`` for layer lists, ``128`` for 128.0."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(str(_norm(v)) for v in value)
    if isinstance(value, str):
        return value.replace(" ", "")
    f = _num(value)
    if f is None:
        try:
            return None if pd.isna(value) else str(value)
        except (TypeError, ValueError):
            return str(value)
    return str(int(f)) if f.is_integer() else repr(f)


def _samples(value: Any) -> np.ndarray:
    if value is None or isinstance(value, (str, float, int)):
        return np.empty(0)
    try:
        return stats.as_samples(list(value))
    except (TypeError, ValueError):
        return np.empty(0)


def config_label(row: dict[str, Any]) -> str:
    """``variant kernel layers bBATCH dtype Ndev``; a pytest-benchmark name without key columns."""
    if not _has_key(row):
        name = str(_norm(row.get("name")) or _norm(row.get("config_id")) or "?")
        return name.rsplit("::", 1)[-1]
    label = (
        f"{row.get('variant')} {row.get('kernel')} {_norm(row.get('layer_sizes'))} "
        f"b{_norm(row.get('batch_size'))} {row.get('dtype')} {_norm(row.get('n_devices'))}dev"
    )
    fw = row.get("framework")
    if fw and fw != "jax":
        label = f"{fw}:{label}"
    procs = _norm(row.get("n_processes"))
    if procs not in (None, "1"):
        label += f" {procs}proc"
    return label


def _has_key(row: dict[str, Any]) -> bool:
    """Whether a row names its configuration (a pytest-benchmark row may only have a name)."""
    return _norm(row.get("variant")) is not None and _norm(row.get("kernel")) is not None


def _key(row: dict[str, Any], by_name: bool) -> tuple[str | None, ...]:
    if by_name or not _has_key(row):
        return ("name", _norm(row.get("name")) or _norm(row.get("config_id")))
    return tuple(_norm(row.get(c)) for c in MATCH_COLUMNS)


def _index(side: Side, by_name: bool) -> tuple[dict[tuple, dict[str, Any]], list[str]]:
    out: dict[tuple, dict[str, Any]] = {}
    dupes = []
    for rec in side.rows.to_dict(orient="records"):
        k = _key(rec, by_name)
        if k in out:
            dupes.append(config_label(rec))
        out[k] = rec
    return out, dupes


# --------------------------------------------------------------------------- comparison


@dataclasses.dataclass
class FigureChange:
    """One deterministic figure of one row: both numbers and whether they differ."""

    metric: str
    base: float | None
    current: float | None
    tolerance: float
    changed: bool


@dataclasses.dataclass
class RowResult:
    """The comparison of one configuration; times in seconds per step."""

    key: tuple[str | None, ...]
    label: str
    config: dict[str, Any]
    verdict: str
    note: str = ""
    base_median_s: float | None = None
    cur_median_s: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    n_base: int = 0
    n_cur: int = 0
    p_passes: float | None = None
    compile_base_s: float | None = None
    compile_cur_s: float | None = None
    compile_ratio: float | None = None
    compile_verdict: str | None = None
    figures: list[FigureChange] = dataclasses.field(default_factory=list)
    recompiles_current: float | None = None

    @property
    def changes(self) -> list[FigureChange]:
        return [f for f in self.figures if f.changed]

    @property
    def hlo_flag(self) -> bool:
        """A deterministic change, or steady-state recompiles in CURRENT."""
        return bool(self.changes) or (self.recompiles_current or 0) > 0


@dataclasses.dataclass
class Settings:
    """What compare was asked to do."""

    factor: float = stats.DEFAULT_FACTOR
    alpha: float = stats.DEFAULT_ALPHA
    compile_factor: float = DEFAULT_COMPILE_FACTOR
    min_samples: int = stats.DEFAULT_MIN_SAMPLES
    fail_on: tuple[str, ...] = ("step",)
    allow_different_hardware: bool = False
    n_boot: int = 2000
    confidence: float = 0.95
    #: the sides were measured interleaved (``bench ab``): both saw the same machine at the same
    #: time, so the sample-level test stands alone. Separate runs also need their passes apart.
    paired: bool = False


@dataclasses.dataclass
class Report:
    """Everything compare found. ``exit_code`` is 0 or 1 (bad input raises InputError).

    Attributes:
      baseline: the BASELINE side.
      current: the CURRENT side.
      settings: the thresholds used.
      rows: one result per configuration of either side, slower rows first.
      same_hardware: whether the hardware fingerprints are equal (None: a side has none).
      failures: one line per regression in a ``--fail-on`` metric.
      gated: whether failures set the exit code (same hardware or allowed).
      timing: ``pipelined`` (run samples) or ``synced`` (a pytest-benchmark side).
      mixed: one side is pytest-benchmark and the other is not.
    """

    baseline: Side
    current: Side
    settings: Settings
    rows: list[RowResult]
    same_hardware: bool | None
    failures: list[str]
    gated: bool
    timing: str
    mixed: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failures and self.gated else 0

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICT_ORDER, 0)
        for r in self.rows:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out


def _close(a: float, b: float, rel: float) -> bool:
    if rel == 0.0:
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b))


def _compare_row(
    key: tuple, b: dict[str, Any], c: dict[str, Any], s: Settings, cols: tuple[dict, dict]
) -> RowResult:
    res = RowResult(key, config_label(c), _config(c), stats.SAME)
    res.recompiles_current = _num(c.get("recompiles"))
    bad = [
        f"{side}: {rec.get('status') or 'no status'}"
        + (f" ({rec.get('error')})" if rec.get("error") else "")
        for side, rec in (("baseline", b), ("current", c))
        if rec.get("status") != "ok"
    ]
    if bad:
        res.verdict = ERROR
        res.note = "; ".join(bad)
        return res
    (bs, bm), (cs, cm) = _timing(b, cols[0]), _timing(c, cols[1])
    if bs.size and cs.size:
        cmp = stats.compare_samples(
            bs,
            cs,
            s.factor,
            s.alpha,
            s.min_samples,
            n_boot=s.n_boot,
            confidence=s.confidence,
        )
        res.verdict, res.note = cmp.verdict, cmp.note
        res.base_median_s, res.cur_median_s = cmp.base_median, cmp.cur_median
        res.ratio, res.ci_low, res.ci_high = cmp.ratio, cmp.ci_low, cmp.ci_high
        res.p, res.n_base, res.n_cur = cmp.p, cmp.n_base, cmp.n_cur
        if not s.paired and res.verdict in (stats.SLOWER, stats.FASTER):
            _check_passes(res, b, c, s)
    else:
        res.base_median_s, res.cur_median_s = bm, cm
        if bm and cm is not None:
            res.ratio = cm / bm
            res.verdict = stats.ratio_verdict(res.ratio, s.factor)
            res.note = "no raw samples: ratio only"
        else:
            res.note = "no step times to compare"
    # compile: the parts both sides measured
    parts = [p for p in COMPILE_PARTS if _num(b.get(p)) is not None and _num(c.get(p)) is not None]
    if parts:
        res.compile_base_s = sum(_num(b.get(p)) or 0.0 for p in parts)
        res.compile_cur_s = sum(_num(c.get(p)) or 0.0 for p in parts)
        if res.compile_base_s > 0:
            res.compile_ratio = res.compile_cur_s / res.compile_base_s
            res.compile_verdict = stats.ratio_verdict(res.compile_ratio, s.compile_factor)
    for metric, tol in DETERMINISTIC.items():
        bv, cv = _num(b.get(metric)), _num(c.get(metric))
        if bv is None or cv is None:
            continue
        res.figures.append(FigureChange(metric, bv, cv, tol, not _close(bv, cv, tol)))
    return res


def _pass_medians(row: dict[str, Any]) -> list[float]:
    values = row.get("pass_medians_s")
    if not isinstance(values, (list, tuple, np.ndarray)):
        return []
    return [float(m) for m in values if _num(m) is not None]


def _check_passes(res: RowResult, b: dict[str, Any], c: dict[str, Any], s: Settings) -> None:
    """Separate runs: a process can be slow as a whole (a shared machine, memory placement),
    which the samples of one process cannot show. With several passes a side (``bench run
    --repeats``), the verdict stands only if the passes' medians differ too (Mann-Whitney U
    over the process medians; 5 passes a side can reach p < 0.01, 3 cannot)."""
    bp, cp = _pass_medians(b), _pass_medians(c)
    if len(bp) < 2 or len(cp) < 2:
        return
    res.p_passes = stats.mann_whitney_p(bp, cp)
    if res.p_passes < s.alpha:
        return
    res.note = (
        f"{res.verdict} by the samples, but the {len(bp)} + {len(cp)} process medians overlap "
        f"(p={res.p_passes:.2g}): within the noise between processes"
        + ("; 5 passes a side can show a difference" if min(len(bp), len(cp)) < 5 else "")
    )
    res.verdict = stats.SAME


def _config(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: schema.clean(row.get(k)) for k in schema.KEY_COLUMNS}
    out["config_id"] = schema.clean(row.get("config_id"))
    if row.get("name") is not None:
        out["name"] = schema.clean(row.get("name"))
    return out


def _timing_columns(side: Side, other: Side) -> dict[str, str]:
    """Sample and median columns to use: synced ones against a pytest-benchmark side."""
    if side.kind != PYTEST_BENCHMARK and other.kind == PYTEST_BENCHMARK:
        return {"samples": "sync_samples_s", "median": "sync_step_median_s"}
    return {"samples": "samples_s", "median": "step_median_s"}


def _timing(rec: dict[str, Any], cols: dict[str, str]) -> tuple[np.ndarray, float | None]:
    """Raw samples and median of a row; the pipelined ones when synced ones are absent."""
    samples, median = _samples(rec.get(cols["samples"])), _num(rec.get(cols["median"]))
    if samples.size == 0 and median is None:
        samples, median = _samples(rec.get("samples_s")), _num(rec.get("step_median_s"))
    return samples, median


def compare(base: Side, cur: Side, settings: Settings | None = None) -> Report:
    """Compare two loaded sides (see the module docstring).

    Raises:
      InputError: the sides have no configuration in common.
    """
    s = settings or Settings()
    by_name = base.kind == PYTEST_BENCHMARK and cur.kind == PYTEST_BENCHMARK
    bidx, bdupes = _index(base, by_name)
    cidx, cdupes = _index(cur, by_name)
    for where, dupes in (("BASELINE", bdupes), ("CURRENT", cdupes)):
        if dupes:
            print(
                f"warning: {where} has {len(dupes)} configuration(s) more than once "
                f"(e.g. {dupes[0]}); the last one is used",
                file=sys.stderr,
            )
    common = [k for k in cidx if k in bidx]
    if not common:
        raise InputError(_no_common_message(base, cur, bidx, cidx))
    cols = (_timing_columns(base, cur), _timing_columns(cur, base))
    mixed = PYTEST_BENCHMARK in (base.kind, cur.kind) and base.kind != cur.kind
    timing = "synced" if PYTEST_BENCHMARK in (base.kind, cur.kind) else "pipelined"
    rows: list[RowResult] = []
    for k, c in cidx.items():
        if k in bidx:
            rows.append(_compare_row(k, bidx[k], c, s, cols))
        else:
            r = RowResult(k, config_label(c), _config(c), NEW)
            r.recompiles_current = _num(c.get("recompiles"))
            r.cur_median_s = _timing(c, cols[1])[1]
            if c.get("status") != "ok":
                r.note = f"current: {c.get('status')}"
            rows.append(r)
    for k, b in bidx.items():
        if k not in cidx:
            r = RowResult(k, config_label(b), _config(b), MISSING)
            r.base_median_s = _timing(b, cols[0])[1]
            if b.get("status") != "ok":
                r.note = f"baseline: {b.get('status')}"
            rows.append(r)
    rows.sort(key=_sort_key)

    bfp, cfp = base.fingerprint, cur.fingerprint
    same_hw = None if not bfp or not cfp else bfp == cfp
    failures = _failures(rows, s)
    gated = same_hw is not False or s.allow_different_hardware
    return Report(base, cur, s, rows, same_hw, failures, gated, timing, mixed)


def _sort_key(r: RowResult) -> tuple:
    order = VERDICT_ORDER.index(r.verdict) if r.verdict in VERDICT_ORDER else len(VERDICT_ORDER)
    ratio = r.ratio if r.ratio is not None and math.isfinite(r.ratio) else 0.0
    return (order, -ratio, r.label)


def _failures(rows: Iterable[RowResult], s: Settings) -> list[str]:
    out = []
    for r in rows:
        if "step" in s.fail_on and r.verdict == stats.SLOWER:
            out.append(f"step: {r.label} {_fmt_ratio(r)} (p={_fmt_p(r.p)})")
        if "compile" in s.fail_on and r.compile_verdict == stats.SLOWER:
            out.append(
                f"compile: {r.label} {_fmt_time(r.compile_base_s)} -> "
                f"{_fmt_time(r.compile_cur_s)} (x{r.compile_ratio:.2f} > "
                f"x{s.compile_factor:g})"
            )
        if "hlo" in s.fail_on:
            out.extend(f"hlo: {r.label} {_fmt_change(f)}" for f in r.changes)
            if (r.recompiles_current or 0) > 0 and not any(
                f.metric == "recompiles" for f in r.changes
            ):
                out.append(
                    f"hlo: {r.label} recompiles {_fmt_num(r.recompiles_current)} in steady "
                    "state (must be 0)"
                )
    return out


def _no_common_message(
    base: Side, cur: Side, bidx: dict[tuple, Any], cidx: dict[tuple, Any]
) -> str:
    def sample(idx: dict[tuple, Any]) -> str:
        labels = [config_label(r) for r in list(idx.values())[:3]]
        more = f" and {len(idx) - 3} more" if len(idx) > 3 else ""
        return ", ".join(labels) + more

    msg = (
        f"BASELINE ({base.path}) and CURRENT ({cur.path}) have no configuration in common.\n"
        f"  BASELINE has: {sample(bidx)}\n  CURRENT has:  {sample(cidx)}\n"
        "Rows match on framework, variant, kernel, backend, n_processes, n_devices, "
        "layer_sizes, batch_size and dtype; run both with the same preset."
    )
    if PYTEST_BENCHMARK in (base.kind, cur.kind) and base.kind != cur.kind:
        msg += (
            " A pytest-benchmark file matches a run only through the key columns in each "
            "benchmark's extra_info (the suite in benchmarks/ records them)."
        )
    return msg


# --------------------------------------------------------------------------- formatting


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    a = abs(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if a >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}"


def _fmt_ratio(r: RowResult) -> str:
    if r.ratio is None or not math.isfinite(r.ratio):
        return "-"
    text = f"x{r.ratio:.3f}"
    if r.ci_low is not None and r.ci_high is not None and math.isfinite(r.ci_low):
        text += f" [{r.ci_low:.3f}, {r.ci_high:.3f}]"
    return text


def _fmt_num(v: float | None) -> str:
    if v is None:
        return "-"
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def _fmt_change(f: FigureChange) -> str:
    delta = ""
    if f.base is not None and f.current is not None:
        d = f.current - f.base
        delta = f" ({'+' if d >= 0 else ''}{_fmt_num(d)}"
        if f.base:
            delta += f", {d / f.base * 100:+.2f}%"
        delta += ")"
    return f"{f.metric} {_fmt_num(f.base)} -> {_fmt_num(f.current)}{delta}"
