"""`python -m bench validate`: how often does ``bench compare`` cry wolf, and how often does it
catch a real slowdown, on this machine?

Each trial runs a fixed set of configurations the way ``bench ab --repeats N`` does (two worker
processes of this tree, interleaved, the side that goes first alternating, N passes with fresh
workers, each side's fastest passes pooled), twice:

- **A/A**: both sides run the same code. Every row ``compare`` calls ``slower`` is a false
  alarm. Target: false-alarm rate (flagged rows / rows compared) at most 1%.
- **detection**: the second side's specs carry ``"work_scale": 1.2`` (20% more examples per
  step under the same configuration: ``bench.measure.batch_arrays``). Every row called
  ``slower`` is a detection. Target: detection rate at least 95%.

The verdicts are ``compare``'s own (:func:`bench.compare.compare`, default ``--factor`` and
``--alpha``). The configurations are jit updates whose step time grows in proportion to the
batch (the work dominates), so 20% more work is about 20% more time. Writes
``OUT/validate.json`` and ``OUT/validate.md`` (default ``reports/validate``) and each trial's
run directories under ``OUT/trials``. Exit 0 when both targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import ab, compare, machine, plan, stats, sweep, timing, workers

FALSE_ALARM_TARGET = 0.01
DETECTION_TARGET = 0.95
WORK_SCALE = 1.2
MARKER = "validate.json"

#: named sets of (layer sizes, batch size), jit update: steps of 1-60 ms on 2 cores whose time
#: grows in proportion to the batch (1.2x the examples: 1.15-1.25x the time).
CONFIG_SETS: dict[str, tuple[tuple[tuple[int, ...], int], ...]] = {
    "default": (
        ((784, 256, 256, 10), 1024),
        ((784, 512, 512, 10), 1024),
        ((784, 1024, 1024, 10), 1024),
        ((784, 10), 2048),
    ),
    "quick": (((784, 256, 256, 10), 1024), ((784, 512, 512, 10), 1024), ((784, 10), 2048)),
    "small": (((784, 256, 256, 10), 256),),  # for tests: one cheap configuration
}
DEFAULT_TRIALS = 4
QUICK_TRIALS = 1
#: passes per side, as `bench ab --repeats`: each side pools its fastest passes.
DEFAULT_REPEATS = 3


def specs_for(configs: str, backend: str, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The jit update specs of a named configuration set on ``backend``."""
    sets = CONFIG_SETS[configs]
    grids = [plan.Grid("validate", ("jit",), ("update",), (s,), (b,)) for s, b in sets]
    return plan.expand(grids, backends={backend: info})[0]


def with_work_scale(scale: float):
    def transform(spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "work_scale": scale}

    return transform


def tally(verdicts: list[str]) -> dict[str, Any]:
    """Counts of compare verdicts: rows compared (both sides ok), flagged ``slower``, the rate."""
    rows = sum(v in (stats.SLOWER, stats.FASTER, stats.SAME) for v in verdicts)
    flagged = sum(v == stats.SLOWER for v in verdicts)
    out = {"rows": rows, "flagged": flagged, "faster": verdicts.count(stats.FASTER)}
    out.update(errors=len(verdicts) - rows, rate=flagged / rows if rows else None)
    out["rate_ci95"] = list(clopper_pearson(flagged, rows))
    return out


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Exact binomial interval of a rate ``k / n`` (None, None for n = 0)."""
    if n <= 0:
        return None, None
    from scipy.stats import beta

    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def judge(false_alarm: dict[str, Any], detection: dict[str, Any]) -> dict[str, bool]:
    """Pass/fail of each target; a rate over no rows fails."""
    fa, det = false_alarm["rate"], detection["rate"]
    fa_ok = fa is not None and fa <= FALSE_ALARM_TARGET
    det_ok = det is not None and det >= DETECTION_TARGET
    return {"false_alarm_pass": fa_ok, "detection_pass": det_ok, "pass": fa_ok and det_ok}


def ratio_summary(ratios: list[float | None]) -> dict[str, Any]:
    x = np.asarray([r for r in ratios if r is not None and math.isfinite(r)], dtype=float)
    if not x.size:
        return {"n": 0}
    return {"n": int(x.size), "min": x.min(), "median": np.median(x), "max": x.max()}


@dataclasses.dataclass
class Trials:
    """The A/A and detection runs of every trial, each with its own fresh workers."""

    out: Path
    specs: list[dict[str, Any]]
    settings: timing.Settings
    common: dict[str, Any]  # metadata.json keys both sides share (ab.common_metadata)
    cmp: compare.Settings
    scale: float = WORK_SCALE
    repeats: int = DEFAULT_REPEATS
    dataset: str = "fashion-mnist"
    quiet: bool = False
    max_foreign_load: float = ab.DEFAULT_MAX_FOREIGN_LOAD
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    redone: int = 0  # measurement pairs done again because other jobs loaded the machine
    loaded: int = 0  # pairs kept under such load (the retries did not find it quiet)
    pairs: int = 0

    def phase(self, trial: int, phase: str) -> list[dict[str, Any]]:
        where = self.out / "trials" / f"{trial:02d}-{phase}"
        run_id = f"{machine.run_id()}-{trial:02d}-{phase}"
        scale = self.scale if phase == "detection" else 1.0
        transform = with_work_scale(scale) if phase == "detection" else None
        arms = [
            ab.Arm("a", machine.ROOT, where / "a", f"{run_id}-a"),
            ab.Arm("b", machine.ROOT, where / "b", f"{run_id}-b", transform=transform),
        ]
        init = {"dataset": self.dataset, "data_dir": None}
        init["n_examples"] = ab.n_examples_for(self.specs, self.scale)
        opts = {"repeats": self.repeats, "offset": trial, "log_dir": where / "logs"}
        opts["max_foreign_load"] = self.max_foreign_load
        runner = ab.Interleaved(arms, self.settings, init, quiet=True, **opts)
        runner.run(self.specs)
        self.redone, self.loaded = self.redone + runner.redone, self.loaded + runner.loaded
        self.pairs += runner.pairs
        for arm in arms:
            info = {"trial": trial, "phase": phase, "work_scale": 1.0 if arm.name == "a" else scale}
            ab.write_run_dir(arm, self.common, validate=info)
        a, b = (compare.load_input(arm.run_dir) for arm in arms)
        rows = []
        for r in compare.compare(a, b, self.cmp).rows:
            rows.append(
                {
                    "trial": trial,
                    "phase": phase,
                    "label": r.label,
                    "verdict": r.verdict,
                    "ratio": r.ratio,
                    "p": r.p,
                    "n_a": r.n_base,
                    "n_b": r.n_cur,
                    "note": r.note,
                }
            )
            if not self.quiet:
                ratio = f"x{r.ratio:.3f}" if r.ratio is not None else "-"
                p = f"{r.p:.2g}" if r.p is not None else "-"
                ab.say(
                    f"trial {trial + 1} {phase:<9} {r.label:<40} {ratio:>7} p={p:<7} {r.verdict}"
                )
        self.rows += rows
        return rows


def summarize(rows: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """validate.json: ``info`` (trials, settings, command, date...), the rates and verdicts."""
    aa = [r for r in rows if r["phase"] == "aa"]
    det = [r for r in rows if r["phase"] == "detection"]
    fa, dt = tally([r["verdict"] for r in aa]), tally([r["verdict"] for r in det])
    fa["target"], dt["target"] = f"<= {FALSE_ALARM_TARGET:.0%}", f">= {DETECTION_TARGET:.0%}"
    fa["ratios"] = ratio_summary([r["ratio"] for r in aa])
    dt["ratios"] = ratio_summary([r["ratio"] for r in det])
    cpu = machine.cpu()
    host = {"host": os.uname().nodename, "cpu": cpu.get("model"), "cores": cpu.get("cores")}
    doc = {**info, "configurations": sorted({r["label"] for r in rows})}
    doc.update(false_alarm=fa, detection=dt, **judge(fa, dt), machine=host, rows=rows)
    return json.loads(json.dumps(doc, default=float))  # NumPy numbers as plain ones


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def table(doc: dict[str, Any]) -> list[list[str]]:
    head = "check|trials|rows|flagged slower|rate|95% CI|target|ratios min/median/max|result"
    out = [head.split("|")]
    for key in ("false_alarm", "detection"):
        t, r = doc[key], doc[key]["ratios"]
        name = (
            "false alarms (A/A)"
            if key == "false_alarm"
            else f"detection (x{doc['work_scale']:g} work)"
        )
        ratios = f"{r['min']:.3f} / {r['median']:.3f} / {r['max']:.3f}" if r["n"] else "-"
        ci = f"[{_pct(t['rate_ci95'][0])}, {_pct(t['rate_ci95'][1])}]"
        counts = [str(doc["trials"]), str(t["rows"]), str(t["flagged"]), _pct(t["rate"]), ci]
        out.append([name, *counts, t["target"], ratios, "pass" if doc[f"{key}_pass"] else "FAIL"])
    return out


def _how(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    return (
        f"factor {doc['factor']:g}, alpha {doc['alpha']:g}, {doc['repeats']} pass(es) a side, "
        f"the fastest pooled (bench ab --repeats {doc['repeats']}), timing {doc['timing']}, "
        f"{doc['measurements_redone']} measurement(s) redone and {doc['measurements_under_load']}"
        f" of {doc['measurements']} kept under other jobs' load; "
        f"{m['host']} ({m['cpu']}, {m['cores']} cores), {doc['date']}, {doc['elapsed_s']:.0f} s"
    )


def format_text(doc: dict[str, Any]) -> str:
    rows = table(doc)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", f"{'PASS' if doc['pass'] else 'FAIL'}: {_how(doc)}", *_busy(doc)])


def _busy(doc: dict[str, Any]) -> list[str]:
    """A warning when other jobs loaded the machine through much of the run."""
    if doc["measurements_under_load"] <= 0.1 * doc["measurements"]:
        return []
    return [
        "WARNING: other jobs kept the CPUs busy through much of this run: the rates describe "
        "a loaded machine, not this one at rest; run it again when the machine is quiet"
    ]


def format_markdown(doc: dict[str, Any]) -> str:
    rows = table(doc)
    lines = ["## bench validate", "", f"**{'PASS' if doc['pass'] else 'FAIL'}**: {_how(doc)}.", ""]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(5, "|" + "---|" * len(rows[0]))
    configs = "; ".join(f"`{c}`" for c in doc["configurations"])
    lines += ["", *(f"> {w}" for w in _busy(doc))]
    lines += ["", f"- command: `{doc['command']}`", f"- configurations: {configs}"]
    lines.append(
        f"- rule: slower = median ratio > {doc['factor']:g} and Mann-Whitney U p < {doc['alpha']:g}"
    )
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Measure compare's false-alarm rate (A/A runs of the same code) and its detection rate "
        "for a 20% slowdown on this machine; exit 0 when both targets are met (<= 1%, >= 95%)."
    )
    trials = (
        f"trials (default {DEFAULT_TRIALS}: about 5 minutes on 2 cores; --quick: {QUICK_TRIALS})"
    )
    configs = "the configuration set (default: default, or quick with --quick)"
    repeats = "passes per side, fresh workers each, the fastest pooled: bench ab --repeats N"
    positive = compare._positive_int
    p.add_argument("--trials", type=positive, default=None, help=trials)
    p.add_argument("--quick", action="store_true", help="fewer trials and configurations: ~1 min")
    p.add_argument("--configs", choices=sorted(CONFIG_SETS), default=None, help=configs)
    p.add_argument("--repeats", type=positive, default=DEFAULT_REPEATS, help=f"{repeats} (3)")
    p.add_argument(
        "--timing", choices=plan.PRESETS, default="default", help="timing preset (default)"
    )
    p.add_argument("--work-scale", type=float, default=WORK_SCALE, help="detection's work (1.2)")
    p.add_argument("--factor", type=compare._factor, default=stats.DEFAULT_FACTOR, help="(1.1)")
    p.add_argument("--alpha", type=compare._alpha, default=stats.DEFAULT_ALPHA, help="(0.01)")
    load = "redo a measurement when other jobs used more of the CPUs (as bench ab; 0.05)"
    p.add_argument("--max-foreign-load", type=float, default=ab.DEFAULT_MAX_FOREIGN_LOAD, help=load)
    p.add_argument("--backend", default="cpu", help="backend to measure (default: cpu)")
    p.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist, mnist or synthetic")
    p.add_argument("--out", default=str(Path("reports") / "validate"), help="(reports/validate)")
    p.add_argument("--quiet", action="store_true", help="no line per compared row")


def main(args: argparse.Namespace) -> int:
    configs = args.configs or ("quick" if args.quick else "default")
    trials = args.trials or (QUICK_TRIALS if args.quick else DEFAULT_TRIALS)
    out = Path(args.out)
    if (out / "trials").exists():
        if not (out / MARKER).exists():
            ab.say(f"validate: error: {out} holds results that are not bench validate's")
            return 2
        shutil.rmtree(out / "trials")
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = machine.now(), time.monotonic()
    (out / MARKER).write_text(json.dumps({"command": ab.command_line(), "status": "running"}))
    kw = {"quick": True, "want_peaks": False}
    probe, present, _ = workers.probe_and_peaks([args.backend], ["float32"], out, **kw)
    if args.backend not in present:
        ab.say(f"validate: error: no {args.backend}: {probe['backends'].get(args.backend)}")
        return 2
    specs = specs_for(configs, args.backend, present[args.backend])
    settings = timing.Settings.preset(args.timing)
    common = ab.common_metadata(
        probe, present, preset=args.timing, settings=sweep.vars_of(settings)
    )
    cmp = compare.Settings(factor=args.factor, alpha=args.alpha, paired=True)
    runs = Trials(out, specs, settings, common, cmp, args.work_scale, args.repeats, args.dataset)
    runs.quiet, runs.max_foreign_load = args.quiet, args.max_foreign_load
    ab.say(
        f"validate: {trials} trial(s) x {len(specs)} configurations x {args.repeats} pass(es),"
        f" A/A and x{args.work_scale:g} work, on {args.backend}; writing {out}"
    )
    try:
        for t in range(trials):
            for phase in ("aa", "detection"):
                runs.phase(t, phase)
    except KeyboardInterrupt:
        ab.say("interrupted")
        return 130
    info = {"trials": trials, "configs": configs, "work_scale": args.work_scale}
    info.update(repeats=args.repeats, factor=args.factor, alpha=args.alpha, timing=args.timing)
    info.update(measurements_redone=runs.redone, command=ab.command_line(), date=started)
    info.update(measurements=runs.pairs, measurements_under_load=runs.loaded)
    info["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc = summarize(runs.rows, info)
    (out / MARKER).write_text(json.dumps(doc, indent=1) + "\n")
    (out / "validate.md").write_text(format_markdown(doc))
    print(format_text(doc))
    print(f"wrote {out / MARKER} and {out / 'validate.md'}")
    return 0 if doc["pass"] else 1
