"""`python -m bench validate`: how often does the regression check cry wolf, and how often does
it catch a real slowdown, on this machine?

By default it validates what ``nox -s regress`` runs: the regress preset (every variant,
predict and update, a small and a large batch, the peers), each run measured and judged exactly as
``bench ab`` does (:func:`bench.runner.ab.measure` and :mod:`bench.regression.verdicts`), two
worker processes of this tree side by side:

- **A/A**: both sides run the same code. Every configuration called ``slower`` is a false
  alarm; a run with any is a red build for nothing. Targets: at most 0.1% of configurations,
  at most 5% of runs (the rule's own bound, ``--alpha``).
- **detection**: the second side's ``--slow`` kernel (default ``jit:update``) is called
  ``--slowdown`` (1.2) times per step on average: 20% slower at any size. Target: at least 95%
  of that kernel's configurations called slower, none of the others.

Each ``--trials N`` adds N A/A and N detection runs to ``OUT/trials`` (default
``reports/validate``): trials accumulate across sittings, as long as the settings stay the same
(``--fresh`` starts over). ``OUT/validate.json`` and ``OUT/validate.md`` summarise every trial
so far. Exit 0 when every target is met, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from mnist_kernels.argtypes import count, positive_float

from ..format import say
from ..regression.validation import format_markdown, format_text, summarize
from ..results import machine
from ..results.rundir import RunDir, RunDirBusy
from ..runner import ab, interrupts, trials
from . import options

MARKER = "validate.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Measure the regression check's false alarms (A/A runs of the same code) and its "
        "detection of a 20%% slowdown in one kernel, on the configurations nox -s regress "
        "checks; exit 0 when the targets are met."
    )
    p.add_argument(
        "--trials",
        type=count,
        default=1,
        metavar="N",
        help="A/A and detection runs to add to OUT's (default: 1 of each, ~10 min on 2 cores; "
        "0: judge the stored runs again, e.g. with another --alpha)",
    )
    p.add_argument(
        "--phases",
        type=options.csv,
        default=list(trials.PHASES),
        help="aa, detection or both (default: both)",
    )
    p.add_argument("--fresh", action="store_true", help="forget OUT's earlier trials")
    p.add_argument(
        "--slow",
        type=trials.slowed_kernel,
        default=trials.slowed_kernel(trials.DEFAULT_SLOWED),
        metavar="VARIANT:KERNEL",
        help=f"the kernel slowed in the detection runs (default: {trials.DEFAULT_SLOWED})",
    )
    p.add_argument(
        "--slowdown",
        type=positive_float,
        default=trials.SLOWDOWN,
        help="its calls per step (default: %(default)s)",
    )
    p.add_argument("--out", default=str(Path("reports") / "validate"), help="(reports/validate)")
    options.add_ab_arguments(p)  # as bench ab measures
    options.add_selection_arguments(p)
    options.add_rule_arguments(p)


def main(args: argparse.Namespace) -> int:
    try:
        if not args.preset:
            args.preset = "regress"  # what nox -s regress checks
        chosen = options.selection_from(args)
        phases = _phases(args.phases)
        out = Path(args.out)
        writer = RunDir(out).lock()  # OUT's one writer: trials are numbered from what is there
        common, _, specs, _ = ab.plan(chosen, out)
        settings = _settings(args, chosen, specs)
        rule = options.rule_from(args, paired=True)
        done = _earlier(out, settings, rule, args.slow, fresh=args.fresh)
    except (ValueError, RunDirBusy) as e:
        say(f"validate: error: {e}")
        return 2
    except OSError as e:
        say(f"validate: error: cannot write {args.out}: {e.strerror or e}")
        return 2
    try:
        with interrupts.as_interrupt() as caught:
            return caught.exit_code(
                _trials(args, out, chosen, specs, common, settings, rule, done, phases)
            )
    finally:
        writer.unlock()


def _trials(
    args: argparse.Namespace,
    out: Path,
    chosen: Any,
    specs: list[Any],
    common: dict[str, Any],
    settings: dict[str, Any],
    rule: Any,
    done: list[dict[str, Any]],
    phases: list[str],
) -> int:
    """Run the trials, then summarise every stored run; 130 when interrupted."""
    init, run = options.ab_from(args, chosen, specs)
    runs = trials.Trials(out, specs, init, common, rule, run, args.slow, args.slowdown)
    first = 1 + max((r["trial"] for r in done), default=-1)
    state = {"settings": settings, "command": machine.command_line(), "status": "running"}
    state["alpha"] = args.alpha  # the rule every stored run was judged by this time
    state["date"] = _first_date(out) or machine.now()
    (out / MARKER).write_text(json.dumps(state, indent=1))
    say(
        f"validate: {args.trials} trial(s) ({', '.join(phases)}) x {len(specs)} configurations "
        f"on top of {len(done)} earlier run(s); writing {out}"
    )
    records = list(done)
    interrupted = False
    try:
        for t in range(first, first + args.trials):
            for phase in phases:
                t0 = time.monotonic()
                rec = runs.run(t, phase)
                records.append(rec)
                flagged = sum(r["verdict"] == "slower" for r in rec["rows"])
                say(
                    f"trial {t} {phase}: exit {rec['exit_code']}, {flagged} slower of "
                    f"{len(rec['rows'])}, {rec['suspects_confirmed']} suspects confirmed, "
                    f"{(time.monotonic() - t0) / 60:.1f} min"
                )
    except KeyboardInterrupt:
        say("interrupted: the finished runs are kept")
        interrupted = True
    doc = summarize(records, state)
    (out / MARKER).write_text(json.dumps(doc, indent=1) + "\n")
    (out / "validate.md").write_text(format_markdown(doc))
    print(format_text(doc))
    print(f"wrote {out / MARKER} and {out / 'validate.md'}")
    if interrupted:
        return 130
    return 0 if doc["pass"] else 1


def _phases(given: list[str]) -> list[str]:
    bad = [p for p in given if p not in trials.PHASES]
    if bad or not given:
        raise ValueError(f"--phases: {', '.join(bad) or 'none'}; pick from aa, detection")
    return [p for p in trials.PHASES if p in given]


def _settings(args: argparse.Namespace, chosen: Any, specs: list[dict[str, Any]]) -> dict:
    """What the trials' measurements depend on: trials measured otherwise are not pooled. (The
    rule's alpha is not among them: every stored run is judged again by today's rule.)"""
    return {
        "preset": chosen.preset,
        "configurations": len(specs),
        "config_ids": sorted(s["config_id"] for s in specs),
        "repeats": args.repeats,
        "confirm": max(0, args.confirm),
        "max_suspects": args.max_suspects,
        "factor": args.factor,  # it picks the suspects
        "slowed": ":".join(args.slow),
        "slowdown": args.slowdown,
    }


def _earlier(
    out: Path, settings: dict[str, Any], rule: Any, target: tuple[str, str], *, fresh: bool
) -> list[dict[str, Any]]:
    """The runs already in ``out`` (none with ``fresh``), judged by ``rule``; ValueError when
    they were measured with other settings, or ``out`` holds something else."""
    if (out / "trials").exists() and not (out / MARKER).exists():
        raise ValueError(f"{out} holds results that are not bench validate's; pick another --out")
    if fresh and (out / "trials").exists():
        shutil.rmtree(out / "trials")
    done = trials.load_trials(out, rule, target)
    if not done:
        return []
    try:
        before = json.loads((out / MARKER).read_text()).get("settings")
    except (OSError, json.JSONDecodeError):
        before = None
    if before != settings:
        changed = sorted(
            k for k in settings if not isinstance(before, dict) or before.get(k) != settings[k]
        )
        raise ValueError(
            f"{out} holds {len(done)} run(s) measured with other settings ({', '.join(changed)});"
            " add --fresh to start over, or pick another --out"
        )
    return done


def _first_date(out: Path) -> str | None:
    try:
        return json.loads((out / MARKER).read_text()).get("date")
    except (OSError, json.JSONDecodeError):
        return None
