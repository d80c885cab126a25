"""Renderings of a :class:`bench.regression.verdicts.Report`: the terminal table, the Markdown
for a CI comment, the JSON, the warnings printed beside them, and :func:`present`, which shows a
report the way ``bench compare`` does and gives its exit code."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import format as fmt
from .. import stats
from ..format import say
from ..results import schema
from .sides import Side
from .verdicts import Report, RowResult, pass_medians


def _fmt_compile(r: RowResult) -> str:
    if r.compile_ratio is None:
        return "-"
    mark = "" if r.compile_verdict in (None, stats.SAME) else f" {r.compile_verdict}"
    if r.compile_passes is None:
        return f"x{r.compile_ratio:.2f}{mark} (1 pass)"
    return f"x{r.compile_ratio:.2f}{mark} (p={fmt.fmt_p(r.compile_p)})"


def _table_cells(r: RowResult, with_compile: bool) -> list[str]:
    cells = [
        r.label,
        fmt.fmt_time(r.base_median_s),
        fmt.fmt_time(r.cur_median_s),
        fmt.fmt_ratio(r.ratio, r.ci_low, r.ci_high),
        fmt.fmt_p(r.p),
        r.verdict,
    ]
    if with_compile:
        cells.append(_fmt_compile(r))
    cells.append(r.note)
    return cells


def _headers(with_compile: bool) -> list[str]:
    h = ["config", "baseline", "current", "ratio [95% CI]", "p (Holm)", "verdict"]
    if with_compile:
        h.append("compile")
    return [*h, "note"]


def _deterministic_lines(rep: Report) -> list[str]:
    out = []
    for r in rep.rows:
        out.extend(f"{r.label}: {f.describe()}" for f in r.changes)
        if (r.recompiles_current or 0) > 0 and not any(f.metric == "recompiles" for f in r.changes):
            out.append(
                f"{r.label}: recompiles {fmt.fmt_num(r.recompiles_current)} in steady state "
                "(must be 0)"
            )
    return out


def _summary(rep: Report) -> str:
    counts = rep.counts()
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{len(rep.rows)} configurations: " + ", ".join(parts)


def _rule(rep: Report) -> str:
    s = rep.settings
    test = (
        "a t test of the per-pass log ratios (passes paired by the interleaving; a suspect "
        "judged on its confirming passes only)"
        if s.paired
        else "Welch's t test of the log pass medians (separate runs)"
    )
    return (
        f"slower = ratio > {s.factor:g} and, by {test}, p < {s.alpha:g} after Holm's "
        "correction over all configurations (the chance that identical code is called slower "
        f"anywhere is at most {s.alpha:g}); the pass (one worker process) is the unit of "
        f"evidence, a side of one pass is not judged; at least {s.min_samples} samples a side; "
        f"compile (each pass's median cold compile): the same test, ratio > "
        f"{s.compile_factor:g}, Holm's correction of its own; deterministic figures: counts exact, "
        "flops/bytes/memory within 1e-6 relative; "
        f"failing on: {', '.join(s.fail_on) or 'nothing'}"
    )


def single_pass_warning(rep: Report) -> str | None:
    """Separate runs of one pass: say that noise between processes went unmeasured."""
    if rep.settings.paired:
        return None
    single = [
        name
        for name, side in (("BASELINE", rep.baseline), ("CURRENT", rep.current))
        if "pass_medians_s" not in side.rows.columns
        or not any(
            len(pass_medians({"pass_medians_s": v})) >= 2 for v in side.rows["pass_medians_s"]
        )
    ]
    if not single:
        return None
    return (
        f"note: {' and '.join(single)} measured each configuration in one process: the noise "
        "between processes is unknown (on a shared machine a whole process can run 20-40% "
        "slow), so step times get no verdict. For a gate, use `python -m bench ab` "
        "(interleaved), or `bench run --repeats 3` on both sides."
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
    body = [_table_cells(r, with_compile) for r in rep.rows]
    lines = [fmt.text_table(_headers(with_compile), body, right=(1, 2, 4))]
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
        body = []
        for r in rows:
            cells = _table_cells(r, with_compile)
            cells[0] = f"`{cells[0]}`"
            if r.verdict == stats.SLOWER:
                cells[5] = f"**{r.verdict}**"
            body.append(cells)
        return [fmt.markdown_table(head, body)]

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
            "n_base": r.n_base,
            "n_cur": r.n_cur,
            "passes": dataclasses.asdict(r.passes) if r.passes is not None else None,
            "family": r.family,
            "passes_screen": r.passes_screen,
            "p_slower_holm": r.p_slower_adj,
            "p_faster_holm": r.p_faster_adj,
            "compile": {
                "base_s": r.compile_base_s,
                "cur_s": r.compile_cur_s,
                "ratio": r.compile_ratio,
                "verdict": r.compile_verdict,
                "passes": (
                    dataclasses.asdict(r.compile_passes) if r.compile_passes is not None else None
                ),
                "p_holm": r.compile_p,
                "note": r.compile_note or None,
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
    return schema.jsonable(doc)


def _write(path: str | Path, text: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def present(
    rep: Report, *, markdown: str | Path | None = None, json_path: str | Path | None = None
) -> int:
    """Show ``rep`` as ``bench compare`` does: warnings and notes on stderr, the table on stdout,
    the Markdown and JSON files where asked, the failures; the exit code (0, 1, or 2 when a
    file cannot be written)."""
    warn = hardware_warning(rep)
    if warn:
        say(warn)
    elif rep.same_hardware is None:
        say(
            "warning: a side has no hardware fingerprint; cannot tell whether both runs come "
            "from the same machine (gating as if they did)"
        )
    note = single_pass_warning(rep)
    if note:
        say(note)
    print(format_table(rep))
    try:
        if markdown:
            _write(markdown, format_markdown(rep))
            print(f"wrote {markdown}")
        if json_path:
            _write(json_path, json.dumps(to_json(rep), indent=2) + "\n")
            print(f"wrote {json_path}")
    except OSError as e:
        say(f"compare: error: cannot write the report: {e}")
        return 2
    if rep.failures and rep.gated:
        say(f"REGRESSION: {len(rep.failures)} failure(s):")
        for f in rep.failures:
            say(f"  {f}")
    elif rep.failures:
        say(f"{len(rep.failures)} failure(s) not gating: the runs come from different machines")
    return rep.exit_code
