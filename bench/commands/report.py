"""`python -m bench report RUN_DIR [RUN_DIR ...] [--out DIR]`: tables and plots of one or more
runs (:mod:`bench.report`)."""

from __future__ import annotations

import argparse
import sys

from ..report.build import build_report
from ..results.schema import SchemaError


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
    except (FileNotFoundError, NotADirectoryError, SchemaError) as e:
        print(f"bench report: {e}", file=sys.stderr)
        return 2
    print(f"report: {path} (and {path.with_name('report.md')})")
    return 0
