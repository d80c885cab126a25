"""`python -m bench compare BASELINE CURRENT`: regressions, with statistics and exact gates.

BASELINE and CURRENT are each a run directory (``python -m bench run``), a baseline file
(``python -m bench baseline save``) or a JSON file saved by pytest-benchmark.
``--baseline auto CURRENT`` takes the baseline saved for CURRENT's machine.

Rows are matched by configuration: the key columns of :mod:`bench.schema` except
``device_kind`` (the hardware check below covers the device); two pytest-benchmark files are
matched by each benchmark's ``fullname``. For every matched row:

- **step time** (``--fail-on step``, the default): ratio of medians of the raw per-step samples
  with a bootstrap confidence interval, and a Mann–Whitney U p-value. ``slower`` only when the
  ratio exceeds ``--factor`` (1.10) **and** ``p < --alpha`` (0.01); ``faster`` symmetrically;
  otherwise ``same`` (see :mod:`bench.stats`). Too few samples: ``same`` with a note; no raw
  samples (pytest-benchmark without ``--benchmark-save-data``): the ratio alone decides, with
  a note. Other verdicts: ``new`` (only in CURRENT), ``missing`` (only in BASELINE), ``error``
  (either side's status is not ``ok``).
- **compile time** (``--fail-on compile``): ``trace_s + lower_s + compile_s``, one measurement
  a side and no samples, so the verdict is the ratio alone against ``--compile-factor``
  (default 1.5, because compile times are noisy).
- **deterministic figures** (``--fail-on hlo``): ``recompiles``, ``hlo_ops`` and
  ``hlo_fusions`` must be equal; ``xla_flops``, ``bytes_accessed`` and ``peak_memory_bytes``
  equal within a relative 1e-6. Every change is reported with both numbers, and
  ``recompiles > 0`` in CURRENT is always reported. Figures missing on either side are skipped.

Exit codes: 0 no regression; 1 at least one failure of a metric named in ``--fail-on``; 2 bad
input. When the two sides' hardware fingerprints differ a warning is printed and nothing
gates (exit 0) unless ``--allow-different-hardware`` is given.

When one side is a pytest-benchmark file and the other a run or baseline, the run side's
``sync_samples_s`` (a sync after every call, as pytest-benchmark times) are used where present.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Iterable, Sequence
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


def _fmt_compile(r: RowResult) -> str:
    if r.compile_ratio is None:
        return "-"
    mark = "" if r.compile_verdict in (None, stats.SAME) else f" {r.compile_verdict}"
    return f"x{r.compile_ratio:.2f}{mark}"


def _table_cells(r: RowResult, with_compile: bool) -> list[str]:
    cells = [
        r.label,
        _fmt_time(r.base_median_s),
        _fmt_time(r.cur_median_s),
        _fmt_ratio(r),
        _fmt_p(r.p),
        r.verdict,
    ]
    if with_compile:
        cells.append(_fmt_compile(r))
    cells.append(r.note)
    return cells


def _headers(with_compile: bool) -> list[str]:
    h = ["config", "baseline", "current", "ratio [95% CI]", "p", "verdict"]
    if with_compile:
        h.append("compile")
    return [*h, "note"]


def _deterministic_lines(rep: Report) -> list[str]:
    out = []
    for r in rep.rows:
        out.extend(f"{r.label}: {_fmt_change(f)}" for f in r.changes)
        if (r.recompiles_current or 0) > 0 and not any(f.metric == "recompiles" for f in r.changes):
            out.append(
                f"{r.label}: recompiles {_fmt_num(r.recompiles_current)} in steady state "
                "(must be 0)"
            )
    return out


def _summary(rep: Report) -> str:
    counts = rep.counts()
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{len(rep.rows)} configurations: " + ", ".join(parts)


def _rule(rep: Report) -> str:
    s = rep.settings
    return (
        f"slower = median ratio > {s.factor:g} and Mann-Whitney U p < {s.alpha:g} "
        f"(at least {s.min_samples} samples a side); compile: ratio > {s.compile_factor:g}; "
        "deterministic figures: counts exact, flops/bytes/memory within 1e-6 relative; "
        f"failing on: {', '.join(s.fail_on) or 'nothing'}"
        + (
            ""
            if s.paired
            else "; separate runs: with several passes a side (bench run --repeats), the "
            "process medians must differ too"
        )
    )


def single_pass_warning(rep: Report) -> str | None:
    """Separate runs of one pass: say that noise between processes went unmeasured."""
    if rep.settings.paired or rep.timing != "pipelined":
        return None
    single = [
        name
        for name, side in (("BASELINE", rep.baseline), ("CURRENT", rep.current))
        if "pass_medians_s" not in side.rows.columns
        or not any(
            len(_pass_medians({"pass_medians_s": v})) >= 2 for v in side.rows["pass_medians_s"]
        )
    ]
    if not single:
        return None
    return (
        f"note: {' and '.join(single)} measured each configuration in one process: a process "
        "that runs slow as a whole on a shared machine looks like a regression. For a gate, "
        "use `python -m bench ab` (interleaved), or `bench run --repeats 5` on both sides."
    )


def hardware_warning(rep: Report) -> str | None:
    """The loud warning block for runs from different machines (None when the same)."""
    if rep.same_hardware is not False:
        return None
    bar = "!" * 78
    if rep.settings.allow_different_hardware:
        consequence = "--allow-different-hardware was given: regressions below still fail."
    else:
        consequence = (
            "Timings from different machines are not comparable: regressions below are "
            "reported but do NOT fail this check (exit 0). Pass --allow-different-hardware "
            "to gate anyway."
        )
    return "\n".join(
        [
            bar,
            "WARNING: BASELINE and CURRENT come from DIFFERENT MACHINES",
            f"  baseline: {rep.baseline.fingerprint} ({rep.baseline.machine()})",
            f"  current:  {rep.current.fingerprint} ({rep.current.machine()})",
            f"  {consequence}",
            bar,
        ]
    )


def format_table(rep: Report) -> str:
    """The terminal table, deterministic changes below it, and a one-line summary."""
    with_compile = any(r.compile_ratio is not None for r in rep.rows)
    rows = [_headers(with_compile)] + [_table_cells(r, with_compile) for r in rep.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {1, 2, 4}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    det = _deterministic_lines(rep)
    if det:
        lines += ["", "Deterministic changes (baseline -> current):"]
        lines += [f"  {d}" for d in det]
    lines += ["", _summary(rep), f"rule: {_rule(rep)}"]
    if rep.mixed:
        lines.append(
            "timing: pytest-benchmark syncs after every call, so the run side's synced samples "
            "(sync_samples_s) are compared where it has them"
        )
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def format_markdown(rep: Report) -> str:
    """A Markdown report for a CI comment: verdict, warning, changed rows, the rest folded."""
    lines = ["## Benchmark comparison", ""]
    if rep.failures and rep.gated:
        lines.append(f":x: **{len(rep.failures)} regression(s)**. {_summary(rep)}.")
    elif rep.failures:
        lines.append(
            f":warning: {len(rep.failures)} regression(s), not gating (different machines). "
            f"{_summary(rep)}."
        )
    else:
        lines.append(f":white_check_mark: No regression. {_summary(rep)}.")
    lines += [
        "",
        f"- baseline: `{rep.baseline.path}` ({rep.baseline.kind}; {rep.baseline.machine()})",
        f"- current: `{rep.current.path}` ({rep.current.kind}; {rep.current.machine()})",
        "",
    ]
    warn = hardware_warning(rep)
    if warn:
        lines += [
            "> [!WARNING]",
            "> **BASELINE and CURRENT come from different machines** "
            f"(`{rep.baseline.fingerprint}` vs `{rep.current.fingerprint}`).",
            "> "
            + (
                "Gating anyway (`--allow-different-hardware`)."
                if rep.settings.allow_different_hardware
                else "Regressions are reported but do not fail the check."
            ),
            "",
        ]
    if rep.failures:
        lines += ["### Failures", ""] + [f"- {f}" for f in rep.failures] + [""]
    with_compile = any(r.compile_ratio is not None for r in rep.rows)
    head = _headers(with_compile)

    def table(rows: Sequence[RowResult]) -> list[str]:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for r in rows:
            cells = _table_cells(r, with_compile)
            cells[0] = f"`{cells[0]}`"
            if r.verdict == stats.SLOWER:
                cells[5] = f"**{r.verdict}**"
            out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        return out

    changed = [r for r in rep.rows if r.verdict != stats.SAME]
    same = [r for r in rep.rows if r.verdict == stats.SAME]
    if changed:
        lines += ["### Changed", "", *table(changed), ""]
    if same:
        lines += [
            f"<details><summary>{len(same)} unchanged configuration(s)</summary>",
            "",
            *table(same),
            "",
            "</details>",
            "",
        ]
    det = _deterministic_lines(rep)
    if det:
        lines += ["### Deterministic changes (baseline -> current)", ""]
        lines += [f"- `{d.split(': ', 1)[0]}`: {d.split(': ', 1)[1]}" for d in det] + [""]
    lines.append(f"<sub>Rule: {_rule(rep)}.</sub>")
    return "\n".join(lines) + "\n"


def to_json(rep: Report) -> dict[str, Any]:
    """Everything in the report as JSON-ready data (NaN as null)."""

    def side(sd: Side) -> dict[str, Any]:
        return {
            "path": sd.path,
            "kind": sd.kind,
            "fingerprint": sd.fingerprint,
            "machine": sd.machine(),
            "rows": len(sd.rows),
        }

    def row(r: RowResult) -> dict[str, Any]:
        d = {
            "label": r.label,
            **r.config,
            "verdict": r.verdict,
            "note": r.note,
            "base_median_s": r.base_median_s,
            "cur_median_s": r.cur_median_s,
            "ratio": r.ratio,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "p": r.p,
            "p_passes": r.p_passes,
            "n_base": r.n_base,
            "n_cur": r.n_cur,
            "compile": {
                "base_s": r.compile_base_s,
                "cur_s": r.compile_cur_s,
                "ratio": r.compile_ratio,
                "verdict": r.compile_verdict,
            },
            "deterministic": [dataclasses.asdict(f) for f in r.figures],
            "recompiles_current": r.recompiles_current,
        }
        return d

    doc = {
        "baseline": side(rep.baseline),
        "current": side(rep.current),
        "settings": dataclasses.asdict(rep.settings),
        "same_hardware": rep.same_hardware,
        "gated": rep.gated,
        "timing": rep.timing,
        "exit_code": rep.exit_code,
        "summary": rep.counts(),
        "failures": rep.failures,
        "rows": [row(r) for r in rep.rows],
    }
    return _json_clean(doc)


def _json_clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    return schema.clean(obj)


# --------------------------------------------------------------------------- command line


def _fail_on(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if items in ((), ("none",)):
        return ()
    bad = [t for t in items if t not in FAIL_ON_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {', '.join(bad)}; use a comma-separated list of "
            f"{', '.join(FAIL_ON_CHOICES)} (or none)"
        )
    return items


def _factor(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not f >= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1 (e.g. 1.10 for +10%)")
    return f


def _alpha(text: str) -> float:
    try:
        a = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < a < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1 (e.g. 0.01)")
    return a


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare BASELINE and CURRENT (run directories, baseline files or pytest-benchmark "
        "JSON files). Exit 0: no regression; 1: a regression in a --fail-on metric; 2: bad input."
    )
    parser.epilog = (
        "A step time is 'slower' only when median(current)/median(baseline) > --factor AND the "
        "two-sided Mann-Whitney U p-value of the raw samples < --alpha; the ratio's 95%% "
        "interval is a bootstrap. Deterministic figures (--fail-on hlo): recompiles, hlo_ops "
        "and hlo_fusions must match exactly; xla_flops, bytes_accessed and peak_memory_bytes "
        "within a relative 1e-6. When the hardware fingerprints differ, a warning is printed "
        "and the exit code is 0 unless --allow-different-hardware."
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="BASELINE CURRENT; or only CURRENT together with --baseline",
    )
    parser.add_argument(
        "--baseline",
        metavar="PATH|auto",
        help="the baseline (instead of the BASELINE argument); 'auto' picks "
        "<baseline-dir>/<hardware fingerprint of CURRENT>.json",
    )
    parser.add_argument(
        "--baseline-dir",
        metavar="DIR",
        default=str(baseline_mod.DEFAULT_DIR),
        help="where --baseline auto looks (default: %(default)s)",
    )
    parser.add_argument(
        "--factor",
        type=_factor,
        metavar="X",
        default=stats.DEFAULT_FACTOR,
        help="a step time is slower only when median(current)/median(baseline) exceeds this "
        "(and the difference is significant) (default: %(default)s)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        metavar="P",
        default=stats.DEFAULT_ALPHA,
        help="significance level of the two-sided Mann-Whitney U test (default: %(default)s)",
    )
    parser.add_argument(
        "--compile-factor",
        type=_factor,
        metavar="X",
        default=DEFAULT_COMPILE_FACTOR,
        help="compile time (trace+lower+compile, one measurement a side, no samples, so no "
        "significance test) is slower when its ratio exceeds this; compile times are noisy, "
        "hence the wide default (default: %(default)s)",
    )
    parser.add_argument(
        "--min-samples",
        type=_positive_int,
        metavar="N",
        default=stats.DEFAULT_MIN_SAMPLES,
        help="fewer raw samples than this on either side: never significant, verdict 'same' "
        "with a note (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-on",
        type=_fail_on,
        default=("step",),
        metavar="LIST",
        help="comma-separated metrics whose regressions fail (exit 1): step (step time), "
        "compile (compile time, --compile-factor), hlo (any change in recompiles, XLA flops, "
        "bytes accessed, peak memory, HLO op or fusion counts, or recompiles > 0 in CURRENT); "
        "'none' only reports (default: step)",
    )
    parser.add_argument(
        "--allow-different-hardware",
        action="store_true",
        help="gate even when the two sides' hardware fingerprints differ (by default that is "
        "only a warning and the exit code is 0)",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown report here")
    parser.add_argument("--json", metavar="FILE", help="also write every row as JSON here")
    parser.add_argument(
        "--bootstrap",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="bootstrap resamples for the ratio's 95%% interval (default: %(default)s)",
    )


def _write(path: str, text: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def main(args: argparse.Namespace) -> int:
    try:
        rep = _run(args)
    except InputError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 2
    warn = hardware_warning(rep)
    if warn:
        print(warn, file=sys.stderr)
    elif rep.same_hardware is None:
        print(
            "warning: a side has no hardware fingerprint; cannot tell whether both runs come "
            "from the same machine (gating as if they did)",
            file=sys.stderr,
        )
    note = single_pass_warning(rep)
    if note:
        print(note, file=sys.stderr)
    print(format_table(rep))
    try:
        if args.markdown:
            _write(args.markdown, format_markdown(rep))
            print(f"wrote {args.markdown}")
        if args.json:
            _write(args.json, json.dumps(to_json(rep), indent=2) + "\n")
            print(f"wrote {args.json}")
    except OSError as e:
        print(f"compare: error: cannot write the report: {e}", file=sys.stderr)
        return 2
    if rep.failures and rep.gated:
        print(f"REGRESSION: {len(rep.failures)} failure(s):", file=sys.stderr)
        for f in rep.failures:
            print(f"  {f}", file=sys.stderr)
    elif rep.failures:
        print(
            f"{len(rep.failures)} failure(s) not gating: the runs come from different machines",
            file=sys.stderr,
        )
    return rep.exit_code


def _run(args: argparse.Namespace) -> Report:
    paths = list(args.paths)
    if args.baseline is not None:
        if len(paths) != 1:
            raise InputError(
                f"with --baseline give only CURRENT, got {len(paths)} path(s): "
                "`compare --baseline auto CURRENT`"
            )
        current = load_input(paths[0])
        base = load_input(resolve_baseline(current, args.baseline, args.baseline_dir))
    else:
        if len(paths) != 2:
            raise InputError(
                f"expected BASELINE and CURRENT, got {len(paths)} path(s): "
                "`compare BASELINE CURRENT` or `compare --baseline auto CURRENT`"
            )
        base, current = load_input(paths[0]), load_input(paths[1])
    settings = Settings(
        factor=args.factor,
        alpha=args.alpha,
        compile_factor=args.compile_factor,
        min_samples=args.min_samples,
        fail_on=tuple(args.fail_on),
        allow_different_hardware=args.allow_different_hardware,
        n_boot=args.bootstrap,
        paired=getattr(args, "paired", False),
    )
    return compare(base, current, settings)
