"""`python -m bench export RUN_DIR --format FORMAT [--out FILE]`: a run in another benchmark
tool's format, for github-action-benchmark's charts and alerts or pytest-benchmark's
``compare`` (the formats, field by field: :mod:`bench.results.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..format import say
from ..results import export, schema

#: configurations left out that are named one by one; the rest are counted.
SHOWN_LEFT_OUT = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write RUN_DIR's configurations that finished ok as a github-action-benchmark "
        "(customSmallerIsBetter) array or a pytest-benchmark save file. The others (errors, "
        "timeouts, skips) are left out and listed on stderr."
    )
    parser.epilog = (
        "github-action-benchmark: value = median step time in ms, range = ± the larger half of "
        "its 95% interval. pytest-benchmark: seconds per call, extra_info.steps_per_call "
        "steps a call; `python -m bench compare` reads it back per step."
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `bench run`")
    parser.add_argument(
        "--format",
        required=True,
        choices=export.FORMATS,
        help="the tool whose format to write",
    )
    parser.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        choices=export.INCLUDES,
        help="github-action-benchmark: also an entry '<name> compile' per configuration with "
        "its cold compile time (ms)",
    )
    parser.add_argument(
        "--timing",
        choices=export.TIMINGS,
        default=None,
        help="pytest-benchmark: the synced samples (a sync after every call, as pytest-benchmark "
        "times; what `bench compare` uses from a run directory compared with a pytest-benchmark "
        "file, so the default: like for like) or the pipelined ones (the run's step times)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        out = export.export(args.run_dir, args.format, include=args.include, timing=args.timing)
        text = export.dumps(out.document)
        if args.out:
            path = Path(args.out)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        else:
            print(text, end="")
    except (FileNotFoundError, NotADirectoryError, schema.SchemaError, export.ExportError) as e:
        say(f"export: error: {e}")
        return 2
    except OSError as e:
        say(f"export: error: cannot write {args.out}: {e}; pick a writable path for --out")
        return 2
    _summary(args, out)
    return 0


def _summary(args: argparse.Namespace, out: export.Export) -> None:
    where = args.out or "stdout"
    total = out.written + len(out.left_out)
    say(
        f"export: wrote {out.written} of {total} configurations of {args.run_dir} as "
        f"{args.format} to {where}; times in {out.unit}"
    )
    for note in out.notes:
        say(f"export: {note}")
    if not out.left_out:
        return
    say(f"export: left out {len(out.left_out)} configuration(s):")
    for name, why in out.left_out[:SHOWN_LEFT_OUT]:
        say(f"  {name}: {why}")
    if len(out.left_out) > SHOWN_LEFT_OUT:
        say(f"  ... and {len(out.left_out) - SHOWN_LEFT_OUT} more")
