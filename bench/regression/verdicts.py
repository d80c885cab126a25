"""The comparison behind ``python -m bench compare`` and ``bench ab``: for every configuration of
either side a verdict (step time and compile time by :mod:`bench.stats`'s rule over passes,
the deterministic figures exactly), and the failures that gate. :mod:`bench.regression.render`
shows a :class:`Report`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import format as fmt
from .. import stats
from ..results import schema
from .sides import (
    MATCH_COLUMNS,
    PYTEST_BENCHMARK,
    InputError,
    Side,
    config_label,
    index,
    num,
    samples,
)

NEW, MISSING, ERROR = "new", "missing", "error"
#: the families the process-level tests are judged in (:func:`_pass_test`)
CONFIRMED, SCREENED, ALL = "confirmed", "screened", "all"
#: verdicts in the order rows are listed.
VERDICT_ORDER = (stats.SLOWER, ERROR, MISSING, NEW, stats.FASTER, stats.SAME)

DEFAULT_COMPILE_FACTOR = 1.5

#: relative tolerance of each deterministic figure (0: exact).
TOLERANCE = {"xla_flops": 1e-6, "bytes_accessed": 1e-6, "peak_memory_bytes": 1e-6}
DETERMINISTIC: dict[str, float] = {c: TOLERANCE.get(c, 0.0) for c in schema.DETERMINISTIC_COLUMNS}

FAIL_ON_CHOICES = ("step", "compile", "hlo")


@dataclasses.dataclass
class FigureChange:
    """One deterministic figure of one row: both numbers and whether they differ."""

    metric: str
    base: float | None
    current: float | None
    tolerance: float
    changed: bool

    def describe(self) -> str:
        """``hlo_ops 10 -> 12 (+2, +20.00%)``."""
        delta = ""
        if self.base is not None and self.current is not None:
            d = self.current - self.base
            delta = f" ({'+' if d >= 0 else ''}{fmt.fmt_num(d)}"
            if self.base:
                delta += f", {d / self.base * 100:+.2f}%"
            delta += ")"
        return f"{self.metric} {fmt.fmt_num(self.base)} -> {fmt.fmt_num(self.current)}{delta}"


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
    passes: stats.PassComparison | None = None
    family: str | None = None
    passes_screen: int | None = None
    p_slower_adj: float | None = None
    p_faster_adj: float | None = None
    unconfirmed: bool = False  # a suspect the confirmation had no room for
    #: the pass medians the test used (base, current), and the screening ones (paired)
    tested: tuple[list, list] | None = None
    screening: tuple[list, list] | None = None
    prior: tuple[float, float] | None = None  # (d0, s0^2) the paired test's variance borrowed
    compile_base_s: float | None = None
    compile_cur_s: float | None = None
    compile_ratio: float | None = None
    compile_verdict: str | None = None
    #: the compile test over passes (each pass's median cold compile), as step time's
    compile_passes: stats.PassComparison | None = None
    compile_p: float | None = None  # Holm-adjusted, in the direction of the ratio
    compile_note: str = ""
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
class CompareSettings:
    """The rule a comparison judges by (the flags of ``bench compare``)."""

    factor: float = stats.DEFAULT_FACTOR
    alpha: float = stats.DEFAULT_ALPHA
    compile_factor: float = DEFAULT_COMPILE_FACTOR
    min_samples: int = stats.DEFAULT_MIN_SAMPLES
    fail_on: tuple[str, ...] = ("step",)
    allow_different_hardware: bool = False
    n_boot: int = 2000
    confidence: float = 0.95
    #: the sides were measured interleaved (``bench ab``): pass i of each side measured back to
    #: back, so the passes pair up. Separate runs are compared side against side.
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
    settings: CompareSettings
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
    key: tuple, b: dict[str, Any], c: dict[str, Any], s: CompareSettings, cols: tuple[dict, dict]
) -> RowResult:
    """One configuration's figures and its own test; the verdict waits for :func:`_judge`,
    which weighs every configuration's test together."""
    res = RowResult(key, config_label(c), _config(c), stats.SAME)
    res.recompiles_current = num(c.get("recompiles"))
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
    res.base_median_s, res.cur_median_s = bm, cm
    if bs.size and cs.size:
        cmp = stats.compare_samples(
            bs, cs, s.factor, s.alpha, s.min_samples, n_boot=s.n_boot, confidence=s.confidence
        )
        res.base_median_s, res.cur_median_s = cmp.base_median, cmp.cur_median
        res.ratio, res.ci_low, res.ci_high = cmp.ratio, cmp.ci_low, cmp.ci_high
        res.n_base, res.n_cur = cmp.n_base, cmp.n_cur
        if cmp.note:  # too few samples: nothing to judge
            res.note = cmp.note
        else:
            _pass_test(res, b, c, s)
    elif bm and cm is not None:
        res.ratio = cm / bm
        res.note = "no raw samples: ratio only, not judged"
    else:
        res.note = "no step times to compare"
    spells = [side for side, rec in (("baseline", b), ("current", c)) if _unstable(rec)]
    if spells:
        why = f"{' and '.join(spells)} measured while the machine ran slow (unstable)"
        res.note = f"{res.note}; {why}" if res.note else why
    _compile_test(res, b, c, s)
    for metric, tol in DETERMINISTIC.items():
        bv, cv = num(b.get(metric)), num(c.get(metric))
        if bv is None or cv is None:
            continue
        res.figures.append(FigureChange(metric, bv, cv, tol, not _close(bv, cv, tol)))
    return res


def _pass_test(res: RowResult, b: dict[str, Any], c: dict[str, Any], s: CompareSettings) -> None:
    """The process-level test of one configuration (:func:`bench.stats.compare_passes`) and the
    family it is judged in.

    An interleaved A/B (``paired``) whose rows say how many passes every configuration got
    before the suspects were picked (``passes_screen``) judges a suspect on the passes after
    them alone, measured afresh because it looked slower: the ``confirmed`` family. One that
    did not look slower has only its screening passes and cannot be called slower
    (``screened``). Everything else is judged on all its passes (``all``).
    """
    bp, cp = pass_medians(b), pass_medians(c)
    screen = _int(b.get("passes_screen")) if s.paired else None
    if screen and screen == _int(c.get("passes_screen")) and len(bp) == len(cp) > screen:
        res.family, res.passes_screen = CONFIRMED, screen
        res.tested, res.screening = (bp[screen:], cp[screen:]), (bp[:screen], cp[:screen])
    else:
        res.family = SCREENED if screen else ALL
        res.passes_screen = screen
        res.unconfirmed = bool(screen) and str(c.get("suspect")).lower() in ("true", "1")
        res.tested = res.screening = (bp, cp)
    used = stats.compare_passes(*res.tested, paired=s.paired)
    res.passes = used
    if not used.testable:
        n = min(used.n_base, used.n_cur)
        res.note = (
            f"{n} process{'es' if n != 1 else ''} a side: the noise between processes is "
            "unknown, so no verdict (bench ab, or bench run --repeats 3 on both sides, gives one)"
        )
        return
    res.ratio, res.ci_low, res.ci_high = used.ratio, used.ci_low, used.ci_high


def _compile_test(res: RowResult, b: dict[str, Any], c: dict[str, Any], s: CompareSettings) -> None:
    """Compile time by step time's rule: the unit of evidence is the pass (a worker process's
    median cold compile), paired in an A/B, Welch's test between separate runs; the verdict
    waits for :func:`_judge` (Holm over the configurations, and ``compile_factor``). One pass
    a side: the ratio, no verdict. Compiles within one process are its repeats, not evidence
    between processes (a worker's memory layout and core lengthen every compile it makes)."""
    bp, cp = pass_compiles(b), pass_compiles(c)
    have_b = [v for v in bp if v is not None]
    have_c = [v for v in cp if v is not None]
    if not have_b or not have_c:
        return
    res.compile_base_s = float(np.median(have_b))
    res.compile_cur_s = float(np.median(have_c))
    if res.compile_base_s <= 0:
        return
    res.compile_ratio = res.compile_cur_s / res.compile_base_s
    paired = s.paired and len(bp) == len(cp)
    test = stats.compare_passes(bp, cp, paired=paired)
    if test.testable:
        res.compile_passes = test
        res.compile_ratio = test.ratio
    else:
        res.compile_verdict = stats.SAME
        res.compile_note = "compile: one pass a side, not judged"


def pass_compiles(row: dict[str, Any]) -> list[float | None]:
    """Each pass's cold compile time (None for a pass that failed); a row of one pass, its
    median cold compile (or the sum of its phases, in a row written before compiles were
    repeated)."""
    values = row.get("pass_cold_compile_s")
    if isinstance(values, (list, tuple, np.ndarray)):
        return [num(v) for v in values]
    if row.get("status") != "ok":
        return []
    total = num(row.get("cold_compile_s"))
    if total is None:
        phases = [num(row.get(p)) for p in schema.COMPILE_COLUMNS]
        have = [v for v in phases if v is not None]
        total = sum(have) if have else None
    return [total] if total is not None else []


def _int(value: Any) -> int | None:
    f = num(value)
    return int(f) if f is not None and f > 0 else None


def _judge(rows: list[RowResult], s: CompareSettings) -> None:
    """The verdicts, all configurations together: slower only where Holm's rule over the family
    keeps the p-value under ``alpha`` (so the chance that a comparison of identical code calls
    anything slower is at most ``alpha``) and the ratio is above the factor; faster likewise.

    A ``screened`` configuration is never slower: its ratio was below the screening threshold,
    which is below the factor. With both other families present (inputs mixing confirmed and
    unconfirmed rows) each gets half of ``alpha``.
    """
    _judge_compiles(rows, s)
    if s.paired:
        _moderate(rows)
    tested = [r for r in rows if r.passes is not None and r.passes.testable]
    families = {f: [r for r in tested if r.family == f] for f in (CONFIRMED, ALL)}
    live = [f for f, members in families.items() if members]
    level = s.alpha / max(1, len(live))
    for members in families.values():
        for r, adj in zip(members, stats.holm([r.passes.p_slower for r in members]), strict=True):
            r.p_slower_adj = adj
    for r, adj in zip(tested, stats.holm([r.passes.p_faster for r in tested]), strict=True):
        r.p_faster_adj = adj
    for r in tested:
        ratio = r.ratio if r.ratio is not None else 1.0
        slow_p = r.p_slower_adj if r.p_slower_adj is not None else math.nan
        fast_p = r.p_faster_adj if r.p_faster_adj is not None else math.nan
        if r.family != SCREENED and ratio > s.factor and slow_p < level:
            r.verdict, r.p = stats.SLOWER, slow_p
        elif ratio < 1 / s.factor and fast_p < s.alpha:
            r.verdict, r.p = stats.FASTER, fast_p
        else:
            r.verdict = stats.SAME
            r.p = fast_p if ratio < 1.0 else (slow_p if r.family != SCREENED else None)
            r.note = _why_same(r, s)
        r.note = "; ".join(x for x in (r.note, _passes_note(r)) if x)


def _judge_compiles(rows: list[RowResult], s: CompareSettings) -> None:
    """Compile verdicts, all configurations together: slower only where the ratio is above
    ``compile_factor`` and Holm's adjusted one-sided p-value is below ``alpha``; faster
    likewise (a family of its own: ``--fail-on compile`` keeps its chance of a false alarm at
    ``alpha`` apart from step time's)."""
    tested = [r for r in rows if r.compile_passes is not None]
    slow = stats.holm([r.compile_passes.p_slower for r in tested])
    fast = stats.holm([r.compile_passes.p_faster for r in tested])
    for r, p_slow, p_fast in zip(tested, slow, fast, strict=True):
        ratio = r.compile_ratio if r.compile_ratio is not None else 1.0
        r.compile_p = p_slow if ratio >= 1.0 else p_fast
        if ratio > s.compile_factor and p_slow < s.alpha:
            r.compile_verdict = stats.SLOWER
        elif ratio < 1.0 / s.compile_factor and p_fast < s.alpha:
            r.compile_verdict = stats.FASTER
        else:
            r.compile_verdict = stats.SAME


def _moderate(rows: list[RowResult]) -> None:
    """Paired tests with their variance moderated (:func:`bench.stats.fit_prior`): towards the
    prior fitted to the variances of the passes tested in the same family (a suspect's
    confirming passes; every pass of a configuration judged on all of them), as limma fits its
    prior to the genes it tests."""
    for family in (CONFIRMED, ALL):
        members = [r for r in rows if r.family == family and r.tested is not None]
        spreads = []
        for r in members:
            d = stats.log_ratios(*r.tested)
            if d.size >= 2:
                spreads.append((float(d.var(ddof=1)), d.size - 1))
        if not spreads:
            continue
        prior = stats.fit_prior(*zip(*spreads, strict=True))
        for r in members:
            if r.passes is None or not r.passes.testable:
                continue  # one pass: no verdict, whatever the others' spread
            r.prior = prior
            r.passes = stats.compare_passes(*r.tested, paired=True, prior=prior)
            if r.passes.testable:
                r.ratio, r.ci_low, r.ci_high = r.passes.ratio, r.passes.ci_low, r.passes.ci_high


def _why_same(r: RowResult, s: CompareSettings) -> str:
    ratio = r.ratio if r.ratio is not None else 1.0
    if r.unconfirmed:
        return "a suspect left unconfirmed: more suspects than the confirmation takes"
    if ratio > s.factor:
        return f"above x{s.factor:g}, but within the noise between processes"
    if ratio < 1 / s.factor:
        return f"below 1/x{s.factor:g}, but within the noise between processes"
    return ""


def _passes_note(r: RowResult) -> str:
    """How many passes the verdict rests on."""
    assert r.passes is not None
    n = f"{r.passes.n_cur}" if r.passes.paired else f"{r.passes.n_base}+{r.passes.n_cur}"
    if r.family == CONFIRMED:
        return f"{n} confirming passes after {r.passes_screen} screening"
    return f"{n} passes"


def _unstable(row: dict[str, Any]) -> bool:
    value = row.get("unstable")
    return value is True or value == 1 or str(value).lower() == "true"


def pass_medians(row: dict[str, Any]) -> list[float | None]:
    """Each pass's step median (None for a pass that failed, so passes keep their places); a
    row of one pass, its median."""
    values = row.get("pass_medians_s")
    if not isinstance(values, (list, tuple, np.ndarray)):
        median = num(row.get("step_median_s"))
        return [median] if median is not None and row.get("status") == "ok" else []
    return [num(m) for m in values]


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
    values, median = samples(rec.get(cols["samples"])), num(rec.get(cols["median"]))
    if values.size == 0 and median is None:
        values, median = samples(rec.get("samples_s")), num(rec.get("step_median_s"))
    return values, median


def compare(base: Side, cur: Side, settings: CompareSettings | None = None) -> Report:
    """Compare two loaded sides (see the module docstring).

    Raises:
      InputError: the sides have no configuration in common.
    """
    s = settings or CompareSettings()
    by_name = base.kind == PYTEST_BENCHMARK and cur.kind == PYTEST_BENCHMARK
    bidx, bdupes = index(base, by_name)
    cidx, cdupes = index(cur, by_name)
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
            r.recompiles_current = num(c.get("recompiles"))
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
    _judge(rows, s)
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


def _failures(rows: Iterable[RowResult], s: CompareSettings) -> list[str]:
    out = []
    for r in rows:
        if "step" in s.fail_on and r.verdict == stats.SLOWER:
            out.append(
                f"step: {r.label} {fmt.fmt_ratio(r.ratio, r.ci_low, r.ci_high)} (p={fmt.fmt_p(r.p)})"
            )
        if "compile" in s.fail_on and r.compile_verdict == stats.SLOWER:
            test = r.compile_passes
            interval = fmt.fmt_ratio(r.compile_ratio, test.ci_low, test.ci_high) if test else ""
            out.append(
                f"compile: {r.label} {fmt.fmt_time(r.compile_base_s)} -> "
                f"{fmt.fmt_time(r.compile_cur_s)} ({interval} > x{s.compile_factor:g}, "
                f"p={fmt.fmt_p(r.compile_p)}, {test.n_base}+{test.n_cur} passes)"
            )
        if "hlo" in s.fail_on:
            out.extend(f"hlo: {r.label} {f.describe()}" for f in r.changes)
            if (r.recompiles_current or 0) > 0 and not any(
                f.metric == "recompiles" for f in r.changes
            ):
                out.append(
                    f"hlo: {r.label} recompiles {fmt.fmt_num(r.recompiles_current)} in steady "
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
        f"Rows match on {', '.join(MATCH_COLUMNS)}; run both with the same preset."
    )
    if PYTEST_BENCHMARK in (base.kind, cur.kind) and base.kind != cur.kind:
        msg += (
            " A pytest-benchmark file matches a run only through the key columns in each "
            "benchmark's extra_info (the suite in benchmarks/ records them)."
        )
    return msg
