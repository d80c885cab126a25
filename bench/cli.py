"""`python -m bench SUBCOMMAND ...`: one module per subcommand, imported when used.

Each subcommand module defines ``add_arguments(parser)`` and ``main(args) -> int`` (the exit
code). Exit codes: 0 success, 1 the check failed (``compare``: a regression; ``doctor``: a
problem), 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bench.commands.run", "run the benchmark sweep and write a run directory"),
    "report": ("bench.commands.report", "tables and plots from one or more run directories"),
    "compare": ("bench.commands.compare", "compare two runs: regressions with statistics"),
    "baseline": ("bench.commands.baseline", "save or show the baseline for this machine"),
    "ab": ("bench.commands.ab", "A/B two git commits interleaved on this machine"),
    "validate": ("bench.commands.validate", "measure compare's false-alarm and detection rates"),
    "launch": ("bench.commands.launch", "start N local processes for a jax.distributed run"),
    "doctor": ("bench.commands.doctor", "what hardware and software is here, and what is missing"),
    "history": ("bench.commands.history", "file runs in a results history; find and show changes"),
    "export": ("bench.commands.export", "write a run in another benchmark tool's format"),
    "ci": ("bench.commands.ci", "the CI workflows' steps: PR comment, history push"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the mnist_kernels variants."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        build_parser().parse_args(argv)  # prints usage and exits 2
        return 2
    args = build_parser(only=command).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
