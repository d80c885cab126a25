"""`python -m bench report RUN_DIR [RUN_DIR ...] [--out DIR]`: tables and plots of one or more runs.

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

import argparse
import base64
import dataclasses
import hashlib
import html
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import plots, schema, tables, targets

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, p.note { color: #555; font-size: 14px; max-width: 1100px; }
.scroll { overflow-x: auto; }
"""


@dataclasses.dataclass
class Run:
    """One run directory: its rows (with ``run`` and ``machine`` columns) and metadata."""

    path: Path
    name: str
    rows: pd.DataFrame
    meta: dict[str, Any]


@dataclasses.dataclass
class Block:
    """One item of a section: a table, a plot or a note (``kind``), with its file ``name``."""

    kind: str
    title: str = ""
    name: str = ""
    table: pd.DataFrame | None = None
    path: Path | None = None
    text: str = ""


@dataclasses.dataclass
class Section:
    title: str
    blocks: list[Block] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------- loading


def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Read every run directory.

    Raises:
      FileNotFoundError: a directory, its ``results.jsonl`` or ``metadata.json`` is missing.
      schema.SchemaError: a file written with a schema version this tool does not read.
    """
    runs: list[Run] = []
    names: set[str] = set()
    for d in run_dirs:
        path = Path(d)
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path} is not a directory; pass run directories written by `python -m bench run`"
            )
        meta = schema.load_metadata(path)
        rows = schema.load(path)
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


# --------------------------------------------------------------------------- building


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Write the report of ``run_dirs`` into ``out_dir`` (default: :func:`default_out`).

    Returns:
      the path of ``report.html`` (``report.md`` is next to it).
    Raises:
      FileNotFoundError, schema.SchemaError: see :func:`load_runs`.
    """
    if not run_dirs:
        raise FileNotFoundError("no run directory given")
    runs = load_runs(run_dirs)
    out = Path(out_dir) if out_dir is not None else default_out(run_dirs)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    df = pd.concat([r.rows for r in runs], ignore_index=True)
    metas = [r.meta for r in runs]
    df.to_csv(out / "tables" / "results_merged.csv", index=False)
    left_out: list[tuple[str, str]] = []
    sections: list[Section] = []

    def table(
        sec: Section,
        name: str,
        title: str,
        frame: pd.DataFrame,
        empty: str,
        shown: pd.DataFrame | None = None,
    ) -> None:
        """``frame`` goes to tables/NAME.csv, ``shown`` (default ``frame``) into the report."""
        if frame.empty:
            left_out.append((f"table {name}", f"{title}: {empty}"))
            sec.blocks.append(Block("note", text=f"Table not made: {empty}."))
            return
        frame.to_csv(out / "tables" / f"{name}.csv", index=False)
        sec.blocks.append(Block("table", title, name, table=frame if shown is None else shown))

    def plot(sec: Section, name: str, title: str, fn: Callable[..., plots.Result], *a: Any) -> None:
        path, text = fn(df, out / "plots" / f"{name}.png", *a)
        if path is None:
            left_out.append((f"plot {name}.png", text))
            sec.blocks.append(Block("note", text=f"Plot not drawn: {text}."))
        else:
            sec.blocks.append(Block("plot", title, name, path=path, text=text))

    sec = Section("Runs")
    table(sec, "summary", "run summary", tables.run_summary(df, metas), "no runs")
    sections.append(sec)

    sec = Section("Step time")
    sec.blocks.append(
        Block(
            "note",
            text=f"Step median per SGD step with its 95% confidence "
            f"interval in brackets; {tables.FASTEST} marks the fastest variant "
            "of each batch size for a machine, layer sizes, kernel and dtype.",
        )
    )
    table(
        sec,
        "step_times",
        "step time by variant and batch size",
        tables.step_times(df),
        "no rows with status ok",
    )
    plot(sec, "step_time", "step time vs batch size", plots.step_time)
    plot(sec, "throughput", "throughput vs batch size", plots.throughput)
    sections.append(sec)

    sec = Section("Compile cost")
    table(
        sec,
        "compile_costs",
        "compile costs by variant and depth",
        tables.compile_costs(df),
        "no rows with trace, lower and compile times",
    )
    plot(sec, "compile_time", "compile time vs depth", plots.compile_time)
    sections.append(sec)

    sec = Section("Break-even")
    sec.blocks.append(
        Block(
            "note",
            text="Steps after which a variant's extra compile time "
            "(trace + lower + compile) is paid back by its faster steps, against "
            "the variant with the cheapest compile of the same configuration "
            "(kernel update): — for that one, never when it is not faster.",
        )
    )
    be = tables.break_even(df)
    table(
        sec,
        "break_even",
        "break-even steps",
        be,
        "no configuration with two or more variants with compile times",
        tables.readable(be, drop=("break_even_steps",)),
    )
    plot(sec, "break_even", "compile time vs step time (break-even)", plots.break_even)
    sections.append(sec)

    sec = Section("Roofline")
    plot(sec, "roofline", "roofline", plots.roofline, _peaks(runs))
    sections.append(sec)

    sec = Section("Multi-device scaling")
    table(
        sec,
        "scaling",
        "scaling",
        tables.scaling(df),
        "no multi-device variant measured at 1 device and at another device count",
    )
    plot(sec, "scaling", "multi-device scaling", plots.scaling)
    sections.append(sec)

    sec = Section("Dispatch overhead")
    plot(sec, "dispatch_overhead", "dispatch overhead vs batch size", plots.dispatch_overhead)
    sections.append(sec)

    sec = Section("Versus peers")
    table(sec, "peers", "versus peers", tables.peers(df), tables.NO_PEERS)
    plot(sec, "peers", "versus peers", plots.peers)
    sections.append(sec)

    sec = Section("Targets")
    sec.blocks.append(
        Block(
            "note",
            text="The performance targets (see bench/targets.py): mnist_kernels against "
            "torch-eager, the deep net against the measured peak, logistic regression against "
            "the bandwidth bound, the fused epoch against the notebook's loop and the compute "
            "bound.",
        )
    )
    table(sec, "targets", "performance targets", targets.evaluate(df), "no rows with status ok")
    sections.append(sec)

    sec = Section("Across machines")
    found = tables.machines(df)
    if len(found) < 2:
        why = f"only one machine ({', '.join(found) or 'none'}) in these runs"
        table(sec, "machines", "machine comparison", pd.DataFrame(), why)
    else:
        table(
            sec,
            "machines",
            "machine comparison",
            tables.machine_comparison(df),
            "no configuration measured on two or more machines",
        )
    plot(sec, "machines", "speed ratio across machines", plots.machines)
    sections.append(sec)

    sec = Section("Errors and skips")
    errs = tables.errors(df, metas)
    if errs.empty:
        sec.blocks.append(Block("note", text="No errors, timeouts or skips."))
    else:
        errs.to_csv(out / "tables" / "errors.csv", index=False)
        sec.blocks.append(Block("table", "errors and skips", "errors", table=errs))
    sections.append(sec)

    title = "Benchmark report: " + ", ".join(found or [r.name for r in runs])
    (out / "report.md").write_text(render_markdown(title, runs, sections, left_out, out))
    html_path = out / "report.html"
    html_path.write_text(render_html(title, runs, sections, left_out))
    return html_path


# --------------------------------------------------------------------------- rendering


def _md_text(value: Any) -> str:
    text = "—" if value is None or (isinstance(value, float) and value != value) else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate``); ``|`` and HTML escaped."""
    head = [_md_text(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_text(v) for v in row) + " |")
    return "\n".join(lines)


def render_markdown(
    title: str,
    runs: Sequence[Run],
    sections: Sequence[Section],
    left_out: Sequence[tuple[str, str]],
    out: Path,
) -> str:
    """``report.md``: plots referenced by path relative to ``out``."""
    parts = [f"# {_md_text(title)}", ""]
    parts += [f"Runs: {', '.join(_md_text(r.path) for r in runs)}", ""]
    for sec in sections:
        parts += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if b.kind == "table" and b.table is not None:
                parts += [f"**{_md_text(b.title)}** (`tables/{b.name}.csv`)", ""]
                parts += [markdown_table(b.table), ""]
            elif b.kind == "plot" and b.path is not None:
                rel = b.path.relative_to(out).as_posix()
                parts += [f"![{_md_text(b.title)}]({rel})", "", f"*{_md_text(b.text)}*", ""]
            else:
                parts += [_md_text(b.text), ""]
    parts += ["## Left out", ""]
    parts += [f"- {_md_text(w)}: {_md_text(r)}" for w, r in left_out] or ["Nothing."]
    return "\n".join(parts) + "\n"


def render_html(
    title: str,
    runs: Sequence[Run],
    sections: Sequence[Section],
    left_out: Sequence[tuple[str, str]],
) -> str:
    """``report.html``: self-contained, every string from the data escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<p class="note">Runs: ' + ", ".join(e(str(r.path)) for r in runs) + "</p>",
        "<nav><ul>"
        + "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections))
        + '<li><a href="#left-out">Left out</a></li></ul></nav>',
    ]
    for i, sec in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{e(sec.title)}</h2>')
        for b in sec.blocks:
            if b.kind == "table" and b.table is not None:
                parts.append(f"<h3>{e(b.title)}</h3>")
                body = b.table.to_html(index=False, escape=True, na_rep="—", border=0)
                parts.append(f'<div class="scroll">{body}</div>')
            elif b.kind == "plot" and b.path is not None:
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.title)}">'
                    f"<figcaption><b>{e(b.title)}.</b> {e(b.text)}</figcaption></figure>"
                )
            else:
                parts.append(f'<p class="note">{e(b.text)}</p>')
    parts.append('<h2 id="left-out">Left out</h2>')
    if left_out:
        items = "".join(f"<li><b>{e(w)}</b>: {e(r)}</li>" for w, r in left_out)
        parts.append(f'<ul class="left-out">{items}</ul>')
    else:
        parts.append('<p class="note">Nothing: every table and plot was made.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories written by `python -m bench run` (several: merged, typically "
        "one per machine; the first is the reference of the machine comparison)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="where to write report.md, report.html, plots/ and tables/ (default: the run "
        "directory for one run; <parent of the first>/compare-<name>+<name>... for several)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        path = build_report(args.run_dirs, args.out)
    except (FileNotFoundError, NotADirectoryError, schema.SchemaError) as e:
        print(f"bench report: {e}", file=sys.stderr)
        return 2
    print(f"report: {path} (and {path.with_name('report.md')})")
    return 0
