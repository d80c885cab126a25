"""`python -m bench compare BASELINE CURRENT`: regressions, with statistics and exact gates.

BASELINE and CURRENT are each a run directory (``python -m bench run``), a baseline file
(``python -m bench baseline save``) or a JSON file saved by pytest-benchmark.
``--baseline auto CURRENT`` takes the baseline saved for CURRENT's machine.

Rows are matched by configuration: the key columns of :mod:`bench.results.schema` except
``device_kind`` (the hardware check below covers the device); two pytest-benchmark files are
matched by each benchmark's ``fullname``. For every matched row:

- **step time** (``--fail-on step``, the default): judged pass by pass, a pass being one worker
  process (the samples of one process cannot show the noise between processes). Separate runs
  (``bench run --repeats N`` on each side): Welch's t test of the log pass medians; ``bench
  ab`` output: the passes paired by the interleaving. ``slower`` only when the ratio exceeds
  ``--factor`` (1.10) **and** the one-sided p-value, after Holm's correction over all
  configurations, is below ``--alpha`` (0.05, the chance that comparing identical code fails at
  all); ``faster`` symmetrically; otherwise ``same`` (see :mod:`bench.stats`). A side of one
  pass (a single-pass run, a pytest-benchmark file), too few samples, or no raw samples: no
  verdict (``same``, with a note that says what to measure). Other verdicts: ``new`` (only in
  CURRENT), ``missing`` (only in BASELINE), ``error`` (either side's status is not ``ok``).
- **compile time** (``--fail-on compile``): the cold compile (trace + lower + compile, caches
  cleared), each pass's median of its repeats, judged by step time's rule over passes with a
  Holm family of its own and ``--compile-factor`` (default 1.5: a compile is dearer to
  measure, so fewer passes; the factor keeps small drifts from failing a build). One pass a
  side: the ratio, no verdict.
- **deterministic figures** (``--fail-on hlo``): ``recompiles``, ``hlo_ops``,
  ``hlo_fusions`` and ``launches_per_call`` must be equal; ``xla_flops``, ``bytes_accessed``
  and ``peak_memory_bytes`` equal within a relative 1e-6. Every change is reported with both
  numbers, and ``recompiles > 0`` in CURRENT is always reported. Figures missing on either
  side are skipped.

Exit codes: 0 no regression; 1 at least one failure of a metric named in ``--fail-on``; 2 bad
input. When the two sides' hardware fingerprints differ a warning is printed and nothing
gates (exit 0) unless ``--allow-different-hardware`` is given.

When one side is a pytest-benchmark file and the other a run or baseline, the run side's
``sync_samples_s`` (a sync after every call, as pytest-benchmark times) are used where present.
The comparison itself is :mod:`bench.regression`.
"""

from __future__ import annotations

import argparse

from mnist_kernels.argtypes import positive_int

from ..format import say
from ..regression.render import present
from ..regression.sides import InputError, Side, load_input, resolve_baseline
from ..regression.verdicts import Report, compare
from ..results import baseline
from . import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare BASELINE and CURRENT (run directories, baseline files or pytest-benchmark "
        "JSON files). Exit 0: no regression; 1: a regression in a --fail-on metric; 2: bad input."
    )
    parser.epilog = (
        "A step time is 'slower' only when its ratio > --factor AND its one-sided p-value over "
        "passes (worker processes: a t test of paired log ratios for the two sides of one bench "
        "ab, Welch's for separate runs), Holm-corrected over all configurations, < --alpha; a "
        "side of one pass gets no verdict. Deterministic figures (--fail-on hlo): recompiles, "
        "hlo_ops, hlo_fusions and launches_per_call must match exactly; xla_flops, "
        "bytes_accessed and peak_memory_bytes within a relative 1e-6. When the hardware fingerprints differ, a warning is printed "
        "and the exit code is 0 unless --allow-different-hardware."
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="BASELINE CURRENT; or only CURRENT together with --baseline",
    )
    parser.add_argument(
        "--baseline",
        metavar="PATH|auto",
        help="the baseline (instead of the BASELINE argument); 'auto' picks "
        "<baseline-dir>/<hardware fingerprint of CURRENT>.json",
    )
    parser.add_argument(
        "--baseline-dir",
        metavar="DIR",
        default=str(baseline.DEFAULT_DIR),
        help="where --baseline auto looks (default: %(default)s)",
    )
    options.add_rule_arguments(parser)
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown report here")
    parser.add_argument("--json", metavar="FILE", help="also write every row as JSON here")
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=2000,
        metavar="N",
        help="bootstrap resamples for the ratio's 95%% interval (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        rep = _run(args)
    except InputError as e:
        say(f"compare: error: {e}")
        return 2
    return present(rep, markdown=args.markdown, json_path=args.json)


def _run(args: argparse.Namespace) -> Report:
    paths = list(args.paths)
    if args.baseline is not None:
        if len(paths) != 1:
            raise InputError(
                f"with --baseline give only CURRENT, got {len(paths)} path(s): "
                "`compare --baseline auto CURRENT`"
            )
        current = load_input(paths[0])
        base = load_input(resolve_baseline(current, args.baseline, args.baseline_dir))
    else:
        if len(paths) != 2:
            raise InputError(
                f"expected BASELINE and CURRENT, got {len(paths)} path(s): "
                "`compare BASELINE CURRENT` or `compare --baseline auto CURRENT`"
            )
        base, current = load_input(paths[0]), load_input(paths[1])
    paired = interleaved(base, current)
    return compare(base, current, options.rule_from(args, paired=paired, n_boot=args.bootstrap))


def interleaved(base: Side, current: Side) -> bool:
    """Whether the two sides are the base and head of one ``bench ab`` (their passes pair up)."""
    sides = [s.metadata.get("ab") for s in (base, current)]
    if not all(isinstance(s, dict) for s in sides):
        return False
    ids = [str(s.metadata.get("run_id") or "") for s in (base, current)]
    return [s.get("side") for s in sides] == ["base", "head"] and ids[0].removesuffix(
        "-base"
    ) == ids[1].removesuffix("-head") != ""
