"""`python -m bench run`: the sweep (:mod:`bench.runner.sweep`); with ``--distributed``, one
process of a multi-process run (:mod:`bench.measure.distributed`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_kernels.argtypes import positive_float

from ..format import say
from ..runner import interrupts, sweep
from ..runner.pool import DEFAULT_TIMEOUT_S
from . import options


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_selection_arguments(p)
    p.add_argument("--out", default=None, help="run directory (default reports/<run-id>)")
    p.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="finish an interrupted run in DIR without redoing its rows",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help=f"seconds per configuration before it is killed ({DEFAULT_TIMEOUT_S:.0f})",
    )
    p.add_argument(
        "--repeats",
        type=options.passes,
        default=None,
        metavar="N",
        help="N passes over the configurations, a fresh worker process each; each row pools its "
        "fastest passes. One process can run slow as a whole on a shared machine: use 3 for "
        "runs you gate on with `bench compare` (default: 1)",
    )
    p.add_argument("--no-peaks", action="store_true", help="skip measuring the machine's peaks")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the configurations (and what is left out) without running them",
    )
    p.add_argument("--quiet", action="store_true", help="no line per configuration")
    p.add_argument("--write-run-dir", metavar="FILE", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--distributed",
        action="store_true",
        help="this process is one of several (jax.distributed): run the multi-device "
        "variants over every process's devices; see `python -m bench launch`",
    )


def run_argv() -> list[str]:
    """This process's ``bench run`` arguments (after the subcommand), for ``--resume``."""
    argv = sys.argv[1:]
    return argv[argv.index("run") + 1 :] if "run" in argv else argv


def resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """``--resume DIR``: the interrupted run's own arguments (from its metadata), so it finishes
    the sweep it started; ``--timeout`` and ``--quiet`` given now still apply."""
    from ..results.rundir import load_metadata
    from ..results.schema import SchemaError

    try:
        meta = load_metadata(args.resume)
    except (FileNotFoundError, SchemaError):
        return args  # the sweep reports it
    argv = meta.get("argv")
    if not isinstance(argv, list):
        return args
    parser = argparse.ArgumentParser(prog="python -m bench run")
    add_arguments(parser)
    old = parser.parse_args(argv)
    old.resume, old.out = args.resume, None
    old.timeout = args.timeout or old.timeout
    old.quiet = args.quiet or old.quiet
    old.write_run_dir = args.write_run_dir
    return old


def settings_from(args: argparse.Namespace) -> sweep.SweepSettings:
    return sweep.SweepSettings(
        out=Path(args.out) if args.out else None,
        resume=Path(args.resume) if args.resume else None,
        timeout=args.timeout or DEFAULT_TIMEOUT_S,
        repeats=args.repeats or 1,
        peaks=not args.no_peaks,
        quiet=bool(args.quiet),
        argv=tuple(run_argv()),
        write_run_dir=Path(args.write_run_dir) if args.write_run_dir else None,
    )


def print_plan(plan: sweep.Plan) -> None:
    for s in plan.specs:
        print(
            f"{s['grid']:<9} {s['variant']:<13} {s['kernel']:<7} "
            f"{','.join(map(str, s['layer_sizes'])):<22} b={s['batch_size']:<5} "
            f"{s['dtype']:<8} {s['precision']:<7} {s['grad_layout']:<5} x{s['n_devices']} "
            f"{s['backend']}"
        )
    for s in plan.left_out:
        print(f"left out: {s['what']}: {s['reason']}")
    say(f"{len(plan.specs)} configurations, {len(plan.left_out)} left out")


#: what may be given with --resume: everything else is the interrupted run's own
RESUME_FLAGS = ("--resume", "--timeout", "--quiet", "--write-run-dir")


def flags_beside_resume(argv: list[str]) -> list[str]:
    """The flags of ``argv`` (a ``bench run`` command line) that ``--resume`` would ignore."""
    return [
        a.split("=", 1)[0]
        for a in argv
        if a.startswith("-") and a.split("=", 1)[0] not in RESUME_FLAGS
    ]


def main(args: argparse.Namespace) -> int:
    if args.resume:
        ignored = flags_beside_resume(run_argv())
        if ignored:
            say(
                f"error: --resume finishes the run as it was started; {' '.join(ignored)} would "
                f"change it: drop {'them' if len(ignored) > 1 else 'it'}, or start a new run "
                f"with --out (only --timeout and --quiet may be given with --resume)"
            )
            return 2
        args = resumed_args(args)
    try:
        args = options.merge_config(args)
        selection = options.selection_from(args)
    except ValueError as e:
        say(f"error: {e}")
        return 2
    if args.distributed:
        # this process becomes one of the measuring processes of a jax.distributed run
        from ..measure import distributed

        return distributed.main(selection, distributed.settings_from(args))
    try:
        if args.dry_run:
            print_plan(sweep.dry_run(selection))
            return 0
        # SIGTERM and SIGHUP as Ctrl-C: the workers end, the run stays resumable
        with interrupts.as_interrupt() as caught:
            return caught.exit_code(sweep.run(selection, settings_from(args)))
    except sweep.SweepError as e:
        say(f"error: {e}")
        return 2
