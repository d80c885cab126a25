"""The report of one or more runs (``python -m bench report``): tables and plots, in Markdown
and self-contained HTML (:mod:`bench.report.render`).

Writes into the output directory:

- ``report.md``: the tables as Markdown, the plots referenced by relative path;
- ``report.html``: self-contained (plots embedded as base64 PNG data URIs, a little CSS, no
  scripts), every string taken from results or metadata HTML-escaped;
- ``plots/*.png`` and ``tables/*.csv`` (the tables as shown, plus ``results_merged.csv``: every
  row of every run with its ``machine`` column).

Several run directories, typically from different machines, are merged: every table carries the
machine (``backend:device_kind@host``, with ``[run]`` appended when two runs share a machine) as
a column and a comparison table and plot show the
same configuration across machines. Plots or tables that cannot be made (one device count, no
peers, one machine...) are listed with the reason under "Left out". Runs written with a schema
version this tool does not read are refused (exit code 2) with a message naming the file.

Python API: :func:`build_report` (returns the HTML path).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import rundir
from . import plots, tables, targets, versus
from .render import Block, Section, render_html, render_markdown


@dataclasses.dataclass
class Run:
    """One run directory: its rows (with ``run`` and ``machine`` columns) and metadata."""

    path: Path
    name: str
    rows: pd.DataFrame
    meta: dict[str, Any]


def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Read every run directory.

    Raises:
      FileNotFoundError: a directory, its ``results.jsonl`` or ``metadata.json`` is missing.
      SchemaError: a file written with a schema version this tool does not read.
    """
    runs: list[Run] = []
    names: set[str] = set()
    for d in run_dirs:
        path = Path(d)
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path} is not a directory; pass run directories written by `python -m bench run`"
            )
        meta = rundir.load_metadata(path)
        rows = rundir.load(path)
        name = path.resolve().name or str(path)
        while name in names:
            name += "'"
        names.add(name)
        meta = {**meta, "_run": name}
        rows["run"] = name
        runs.append(Run(path, name, tables.add_machine(rows, meta.get("host")), meta))
    # the same machine in several runs (before/after on one laptop): tell them apart by run
    seen: dict[str, int] = {}
    for r in runs:
        for m in set(r.rows["machine"]):
            seen[m] = seen.get(m, 0) + 1
    for r in runs:
        shared = r.rows["machine"].map(seen) > 1
        r.rows.loc[shared, "machine"] = r.rows.loc[shared, "machine"] + f" [{r.name}]"
    versions = {r.meta.get("schema_version") for r in runs}
    if len(versions) > 1:  # all readable (load checked each); columns are normalised by load
        print(f"note: runs of schema versions {sorted(versions)} merged", file=sys.stderr)
    return runs


def default_out(run_dirs: Sequence[str | Path]) -> Path:
    """The first run directory for one run; ``<parent of the first>/compare-<a>+<b>...`` for
    several (a hash replaces the names when they are long)."""
    first = Path(run_dirs[0])
    if len(run_dirs) == 1:
        return first
    names = [Path(d).resolve().name for d in run_dirs]
    joined = "+".join(names)
    if len(joined) > 60:
        joined = f"{len(names)}-runs-{hashlib.sha256(joined.encode()).hexdigest()[:8]}"
    return first.resolve().parent / f"compare-{joined}"


def _peaks(runs: Sequence[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """``{machine: {dtype: peaks}}`` from each run's metadata ``peaks[backend]``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        peaks = run.meta.get("peaks") or {}
        for machine, backend in (
            run.rows[["machine", "backend"]].drop_duplicates().itertuples(index=False)
        ):
            if isinstance(peaks.get(backend), dict):
                out[machine] = peaks[backend]
    return out


class Builder:
    """Fills the report's sections from the merged rows, writing each table's CSV and each
    plot's PNG under ``out``; what cannot be made goes under "Left out" with the reason."""

    def __init__(self, runs: list[Run], out: Path) -> None:
        self.runs, self.out = runs, out
        self.df = pd.concat([r.rows for r in runs], ignore_index=True)
        self.metas = [r.meta for r in runs]
        self.left_out: list[tuple[str, str]] = []
        self.sections: list[Section] = []

    def section(self, title: str, *notes: str) -> Section:
        sec = Section(title, [Block("note", text=n) for n in notes])
        self.sections.append(sec)
        return sec

    def table(
        self,
        sec: Section,
        name: str,
        title: str,
        frame: pd.DataFrame,
        empty: str,
        shown: pd.DataFrame | None = None,
        *,
        asked: bool = True,
    ) -> None:
        """``frame`` goes to tables/NAME.csv, ``shown`` (default ``frame``) into the report.
        An empty table of a measurement the runs did not ask for (``asked`` False) is noted in
        its section, not listed as left out."""
        if frame.empty:
            if asked:
                self.left_out.append((f"table {name}", f"{title}: {empty}"))
            sec.blocks.append(Block("note", text=f"Table not made: {empty}."))
            return
        frame.to_csv(self.out / "tables" / f"{name}.csv", index=False)
        sec.blocks.append(Block("table", title, name, table=frame if shown is None else shown))

    def plot(
        self, sec: Section, name: str, title: str, fn: Callable[..., plots.Result], *a: Any
    ) -> None:
        path, text = fn(self.df, self.out / "plots" / f"{name}.png", *a)
        if path is None:
            self.left_out.append((f"plot {name}.png", text))
            sec.blocks.append(Block("note", text=f"Plot not drawn: {text}."))
        else:
            sec.blocks.append(Block("plot", title, name, path=path, text=text))

    def steps(self) -> None:
        df = self.df
        sec = self.section("Runs")
        self.table(sec, "summary", "run summary", tables.run_summary(df, self.metas), "no runs")
        sec = self.section(
            "Step time",
            f"Step median per SGD step with its 95% confidence interval in brackets; "
            f"{tables.FASTEST} marks the fastest variant on one device of each batch size for a "
            "machine, layer sizes, kernel, dtype and precision (an ensemble, which trains several "
            f"models, is not in the running); {tables.UNSTABLE} a row measured while "
            "the machine ran slow (see Errors and skips). (stock): the variant with jax.grad's "
            "own weight-gradient layout; without it, the tuned one. notebook: the seed "
            "notebook's step (stock jax.grad, a host batch at every call).",
        )
        what = "step time by variant and batch size"
        self.table(sec, "step_times", what, tables.step_times(df), "no rows with status ok")
        what = (
            "speed-up over the seed notebook's step (T notebook / T variant; one device, one model)"
        )
        why = "no notebook row measured beside the others"
        self.table(sec, "notebook_speedup", what, versus.notebook_speedup(df), why)
        self.plot(sec, "step_time", "step time vs batch size", plots.step_time)
        self.plot(sec, "throughput", "throughput vs batch size", plots.throughput)

    def compile(self) -> None:
        df = self.df
        sec = self.section("Compile cost")
        self.table(
            sec,
            "compile_costs",
            "compile costs by variant and depth",
            tables.compile_costs(df),
            "no rows with trace, lower and compile times",
        )
        self.plot(sec, "compile_time", "compile time vs depth", plots.compile_time)
        sec = self.section(
            "Cold vs cached compile",
            "What a user's next start waits for: trace + lower + compile with the executable "
            "loaded from JAX's persistent compilation cache, in a fresh process (the cache "
            "filled by the process before, minimum compile time and entry size 0), beside the "
            "cold compile in the worker and in a fresh process. Trace and lower are not cached: "
            "they stay in every start. Measured where asked (`--cached-compile`; the default "
            "and --full presets' depth sweep).",
        )
        self.table(
            sec,
            "cached_compile",
            "cold vs cached compile by variant and depth",
            tables.cached_compile(df),
            "no rows with a cached compile (run with --cached-compile)",
            asked=_has(df, "cached_compile_s"),
        )
        sec = self.section(
            "Break-even",
            "Steps after which a variant's extra compile time (trace + lower + compile) is paid "
            "back by its faster steps, against the variant with the cheapest compile of the same "
            "configuration (kernel update): — for that one, never when it is not faster.",
        )
        be = tables.break_even(df)
        self.table(
            sec,
            "break_even",
            "break-even steps",
            be,
            "no configuration with two or more variants with compile times",
            tables.readable(be, drop=("break_even_steps",)),
        )
        self.plot(sec, "break_even", "compile time vs step time (break-even)", plots.break_even)
        trade = tables.compile_tradeoff(df)
        self.table(
            sec,
            "compile_tradeoff",
            "compile harder or faster: XLA's own options against another set, same kernel",
            trade,
            "no configuration measured with two sets of compile options (--compile-options "
            "standard,fast-compile)",
            tables.readable(trade, drop=("break_even_steps",)),
            asked=_has(df, "compile_options", lambda v: isinstance(v, str) and v != "standard"),
        )

    def limits(self) -> None:
        df = self.df
        sec = self.section("Roofline")
        self.plot(sec, "roofline", "roofline", plots.roofline, _peaks(self.runs))
        sec = self.section("Multi-device scaling")
        why = "no multi-device variant measured at 1 device and at another device count"
        self.table(sec, "scaling", "scaling", tables.scaling(df), why)
        self.plot(sec, "scaling", "multi-device scaling", plots.scaling)
        sec = self.section("Dispatch overhead")
        self.plot(
            sec, "dispatch_overhead", "dispatch overhead vs batch size", plots.dispatch_overhead
        )

    def comparisons(self) -> list[str]:
        """Peers, targets and machines; the machines found."""
        df = self.df
        sec = self.section("Versus peers")
        self.table(sec, "peers", "versus peers", versus.peers(df), versus.NO_PEERS)
        self.plot(sec, "peers", "versus peers", plots.peers)
        sec = self.section(
            "Targets",
            "The performance targets (see bench/report/targets.py), each beside the figure it "
            "is held against: mnist_kernels against torch-eager and torch.compile (float32 "
            "and bfloat16), the deep net against the measured peak, logistic regression "
            "against the bandwidth bound, predict and the fused epoch against their bounds "
            "(the larger of compute, at the ceiling of the row's own dot shapes where "
            "measured, and bytes at the measured bandwidth), the fused epoch against the "
            "notebook's own loop and the deep epoch against its compute bound; on a GPU or "
            "TPU also the deep net's bfloat16 update against half the bfloat16 peak and the "
            "fused steps at batch 32 and 128 against their launch floor (the launches a "
            "compiled step runs times the cost of one, measured in the same run).",
        )
        self.table(
            sec, "targets", "performance targets", targets.evaluate(df), "no rows with status ok"
        )
        sec = self.section("Across machines")
        found = tables.machines(df)
        if len(found) < 2:
            why = f"only one machine ({', '.join(found) or 'none'}) in these runs"
            self.table(sec, "machines", "machine comparison", pd.DataFrame(), why)
        else:
            why = "no configuration measured on two or more machines"
            self.table(sec, "machines", "machine comparison", versus.machine_comparison(df), why)
        self.plot(sec, "machines", "speed ratio across machines", plots.machines)
        return found

    def errors(self) -> None:
        sec = self.section("Errors and skips")
        errs = tables.errors(self.df, self.metas)
        if errs.empty:
            sec.blocks.append(Block("note", text="No errors, timeouts or skips."))
        else:
            errs.to_csv(self.out / "tables" / "errors.csv", index=False)
            sec.blocks.append(Block("table", "errors and skips", "errors", table=errs))


def _has(df: pd.DataFrame, col: str, keep: Callable[[Any], bool] = pd.notna) -> bool:
    """Whether any row has ``col`` (and, with ``keep``, a value it keeps)."""
    return col in df.columns and bool(df[col].map(keep).any())


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Write the report of ``run_dirs`` into ``out_dir`` (default: :func:`default_out`).

    Returns:
      the path of ``report.html`` (``report.md`` is next to it).
    Raises:
      FileNotFoundError, SchemaError: see :func:`load_runs`.
    """
    if not run_dirs:
        raise FileNotFoundError("no run directory given")
    runs = load_runs(run_dirs)
    out = Path(out_dir) if out_dir is not None else default_out(run_dirs)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    b = Builder(runs, out)
    b.df.to_csv(out / "tables" / "results_merged.csv", index=False)
    b.steps()
    b.compile()
    b.limits()
    found = b.comparisons()
    b.errors()
    title = "Benchmark report: " + ", ".join(found or [r.name for r in runs])
    paths = [r.path for r in runs]
    (out / "report.md").write_text(render_markdown(title, paths, b.sections, b.left_out, out))
    html_path = out / "report.html"
    html_path.write_text(render_html(title, paths, b.sections, b.left_out))
    return html_path
