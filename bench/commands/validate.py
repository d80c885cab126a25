"""`python -m bench validate`: how often does ``bench compare`` cry wolf, and how often does it
catch a real slowdown, on this machine?

Each trial runs a fixed set of configurations the way ``bench ab --repeats N`` does (two worker
processes of this tree, interleaved, the side that goes first alternating, N passes with fresh
workers, each side's fastest passes pooled), twice:

- **A/A**: both sides run the same code. Every row ``compare`` calls ``slower`` is a false
  alarm. Target: false-alarm rate (flagged rows / rows compared) at most 1%.
- **detection**: the second side's specs carry ``"work_scale": 1.2`` (20% more examples per
  step under the same configuration: ``bench.measure.kernels.batch_arrays``). Every row called
  ``slower`` is a detection. Target: detection rate at least 95%.

The verdicts are ``compare``'s own (:func:`bench.regression.verdicts.compare`, default ``--factor`` and
``--alpha``). The configurations are jit updates whose step time grows in proportion to the
batch (the work dominates), so 20% more work is about 20% more time. Writes
``OUT/validate.json`` and ``OUT/validate.md`` (default ``reports/validate``) and each trial's
run directories under ``OUT/trials``. Exit 0 when both targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from mnist_kernels.argtypes import positive_int

from .. import selection, stats
from ..format import say
from ..protocol import TimingSettings
from ..regression.validation import format_markdown, format_text, summarize
from ..regression.verdicts import CompareSettings
from ..results import machine
from ..runner import ab, probe
from ..runner.trials import (
    CONFIG_SETS,
    DEFAULT_REPEATS,
    DEFAULT_TRIALS,
    QUICK_TRIALS,
    WORK_SCALE,
    Trials,
    specs_for,
)
from . import options

MARKER = "validate.json"


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
    p.add_argument("--trials", type=positive_int, default=None, help=trials)
    p.add_argument("--quick", action="store_true", help="fewer trials and configurations: ~1 min")
    p.add_argument("--configs", choices=sorted(CONFIG_SETS), default=None, help=configs)
    p.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS, help=f"{repeats} (3)")
    p.add_argument(
        "--timing", choices=selection.PRESETS, default="default", help="timing preset (default)"
    )
    p.add_argument("--work-scale", type=float, default=WORK_SCALE, help="detection's work (1.2)")
    p.add_argument("--factor", type=options.factor, default=stats.DEFAULT_FACTOR, help="(1.1)")
    p.add_argument("--alpha", type=options.alpha, default=stats.DEFAULT_ALPHA, help="(0.01)")
    load = "redo a measurement when other jobs used more of the CPUs (as bench ab; 0.05)"
    p.add_argument("--max-foreign-load", type=float, default=ab.DEFAULT_MAX_FOREIGN_LOAD, help=load)
    p.add_argument("--backend", default="cpu", help="backend to measure (default: cpu)")
    p.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist, mnist or synthetic")
    p.add_argument("--out", default=str(Path("reports") / "validate"), help="(reports/validate)")
    p.add_argument("--quiet", action="store_true", help="no line per compared row")


def _prepare(out: Path) -> bool:
    """``out`` emptied of an earlier validation's trials; False when it holds something else."""
    if (out / "trials").exists():
        if not (out / MARKER).exists():
            say(f"validate: error: {out} holds results that are not bench validate's")
            return False
        shutil.rmtree(out / "trials")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"command": machine.command_line(), "status": "running"}))
    return True


def main(args: argparse.Namespace) -> int:
    configs = args.configs or ("quick" if args.quick else "default")
    trials = args.trials or (QUICK_TRIALS if args.quick else DEFAULT_TRIALS)
    out = Path(args.out)
    if not _prepare(out):
        return 2
    started, t0 = machine.now(), time.monotonic()
    found, present = probe.probe([args.backend], out)
    if args.backend not in present:
        say(f"validate: error: no {args.backend}: {found['backends'].get(args.backend)}")
        return 2
    specs = specs_for(configs, args.backend, present[args.backend])
    timing = TimingSettings.preset(args.timing)
    common = machine.metadata("", found, present, preset=args.timing, settings=timing.to_json())
    rule = CompareSettings(factor=args.factor, alpha=args.alpha, paired=True)
    runs = Trials(out, specs, timing, common, rule, args.work_scale, args.repeats, args.dataset)
    runs.quiet, runs.max_foreign_load = args.quiet, args.max_foreign_load
    say(
        f"validate: {trials} trial(s) x {len(specs)} configurations x {args.repeats} pass(es),"
        f" A/A and x{args.work_scale:g} work, on {args.backend}; writing {out}"
    )
    try:
        for t in range(trials):
            for phase in ("aa", "detection"):
                runs.phase(t, phase)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    info = {"trials": trials, "configs": configs, "work_scale": args.work_scale}
    info.update(repeats=args.repeats, factor=args.factor, alpha=args.alpha, timing=args.timing)
    info.update(measurements_redone=runs.redone, command=machine.command_line(), date=started)
    info.update(measurements=runs.pairs, measurements_under_load=runs.loaded)
    info["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc = summarize(runs.rows, info)
    (out / MARKER).write_text(json.dumps(doc, indent=1) + "\n")
    (out / "validate.md").write_text(format_markdown(doc))
    print(format_text(doc))
    print(f"wrote {out / MARKER} and {out / 'validate.md'}")
    return 0 if doc["pass"] else 1
