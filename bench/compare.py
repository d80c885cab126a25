"""`python -m bench compare BASELINE CURRENT`: regressions, with statistics and exact gates.

BASELINE and CURRENT are each a run directory (``python -m bench run``), a baseline file
(``python -m bench baseline save``) or a JSON file saved by pytest-benchmark.
``--baseline auto CURRENT`` takes the baseline saved for CURRENT's machine.

Rows are matched by configuration: the key columns of :mod:`bench.schema` except
``device_kind`` (the hardware check below covers the device); two pytest-benchmark files are
matched by each benchmark's ``fullname``. For every matched row:

- **step time** (``--fail-on step``, the default): ratio of medians of the raw per-step samples
  with a bootstrap confidence interval, and a Mann–Whitney U p-value. ``slower`` only when the
  ratio exceeds ``--factor`` (1.10) **and** ``p < --alpha`` (0.01); ``faster`` symmetrically;
  otherwise ``same`` (see :mod:`bench.stats`). Too few samples: ``same`` with a note; no raw
  samples (pytest-benchmark without ``--benchmark-save-data``): the ratio alone decides, with
  a note. Other verdicts: ``new`` (only in CURRENT), ``missing`` (only in BASELINE), ``error``
  (either side's status is not ``ok``).
- **compile time** (``--fail-on compile``): ``trace_s + lower_s + compile_s``, one measurement
  a side and no samples, so the verdict is the ratio alone against ``--compile-factor``
  (default 1.5, because compile times are noisy).
- **deterministic figures** (``--fail-on hlo``): ``recompiles``, ``hlo_ops`` and
  ``hlo_fusions`` must be equal; ``xla_flops``, ``bytes_accessed`` and ``peak_memory_bytes``
  equal within a relative 1e-6. Every change is reported with both numbers, and
  ``recompiles > 0`` in CURRENT is always reported. Figures missing on either side are skipped.

Exit codes: 0 no regression; 1 at least one failure of a metric named in ``--fail-on``; 2 bad
input. When the two sides' hardware fingerprints differ a warning is printed and nothing
gates (exit 0) unless ``--allow-different-hardware`` is given.

When one side is a pytest-benchmark file and the other a run or baseline, the run side's
``sync_samples_s`` (a sync after every call, as pytest-benchmark times) are used where present.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import baseline as baseline_mod
from . import stats
from .compare_output import (
    format_markdown,
    format_table,
    hardware_warning,
    single_pass_warning,
    to_json,
)
from .comparison import (
    DEFAULT_COMPILE_FACTOR,
    FAIL_ON_CHOICES,
    InputError,
    Report,
    Settings,
    compare,
    load_input,
    resolve_baseline,
)

__all__ = ["Settings", "add_arguments", "compare", "load_input", "main"]


def _fail_on(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if items in ((), ("none",)):
        return ()
    bad = [t for t in items if t not in FAIL_ON_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {', '.join(bad)}; use a comma-separated list of "
            f"{', '.join(FAIL_ON_CHOICES)} (or none)"
        )
    return items


def _factor(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not f >= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1 (e.g. 1.10 for +10%)")
    return f


def _alpha(text: str) -> float:
    try:
        a = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < a < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1 (e.g. 0.01)")
    return a


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare BASELINE and CURRENT (run directories, baseline files or pytest-benchmark "
        "JSON files). Exit 0: no regression; 1: a regression in a --fail-on metric; 2: bad input."
    )
    parser.epilog = (
        "A step time is 'slower' only when median(current)/median(baseline) > --factor AND the "
        "two-sided Mann-Whitney U p-value of the raw samples < --alpha; the ratio's 95%% "
        "interval is a bootstrap. Deterministic figures (--fail-on hlo): recompiles, hlo_ops "
        "and hlo_fusions must match exactly; xla_flops, bytes_accessed and peak_memory_bytes "
        "within a relative 1e-6. When the hardware fingerprints differ, a warning is printed "
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
        default=str(baseline_mod.DEFAULT_DIR),
        help="where --baseline auto looks (default: %(default)s)",
    )
    parser.add_argument(
        "--factor",
        type=_factor,
        metavar="X",
        default=stats.DEFAULT_FACTOR,
        help="a step time is slower only when median(current)/median(baseline) exceeds this "
        "(and the difference is significant) (default: %(default)s)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        metavar="P",
        default=stats.DEFAULT_ALPHA,
        help="significance level of the two-sided Mann-Whitney U test (default: %(default)s)",
    )
    parser.add_argument(
        "--compile-factor",
        type=_factor,
        metavar="X",
        default=DEFAULT_COMPILE_FACTOR,
        help="compile time (trace+lower+compile, one measurement a side, no samples, so no "
        "significance test) is slower when its ratio exceeds this; compile times are noisy, "
        "hence the wide default (default: %(default)s)",
    )
    parser.add_argument(
        "--min-samples",
        type=_positive_int,
        metavar="N",
        default=stats.DEFAULT_MIN_SAMPLES,
        help="fewer raw samples than this on either side: never significant, verdict 'same' "
        "with a note (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-on",
        type=_fail_on,
        default=("step",),
        metavar="LIST",
        help="comma-separated metrics whose regressions fail (exit 1): step (step time), "
        "compile (compile time, --compile-factor), hlo (any change in recompiles, XLA flops, "
        "bytes accessed, peak memory, HLO op or fusion counts, or recompiles > 0 in CURRENT); "
        "'none' only reports (default: step)",
    )
    parser.add_argument(
        "--allow-different-hardware",
        action="store_true",
        help="gate even when the two sides' hardware fingerprints differ (by default that is "
        "only a warning and the exit code is 0)",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown report here")
    parser.add_argument("--json", metavar="FILE", help="also write every row as JSON here")
    parser.add_argument(
        "--bootstrap",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="bootstrap resamples for the ratio's 95%% interval (default: %(default)s)",
    )


def _write(path: str, text: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def main(args: argparse.Namespace) -> int:
    try:
        rep = _run(args)
    except InputError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 2
    warn = hardware_warning(rep)
    if warn:
        print(warn, file=sys.stderr)
    elif rep.same_hardware is None:
        print(
            "warning: a side has no hardware fingerprint; cannot tell whether both runs come "
            "from the same machine (gating as if they did)",
            file=sys.stderr,
        )
    note = single_pass_warning(rep)
    if note:
        print(note, file=sys.stderr)
    print(format_table(rep))
    try:
        if args.markdown:
            _write(args.markdown, format_markdown(rep))
            print(f"wrote {args.markdown}")
        if args.json:
            _write(args.json, json.dumps(to_json(rep), indent=2) + "\n")
            print(f"wrote {args.json}")
    except OSError as e:
        print(f"compare: error: cannot write the report: {e}", file=sys.stderr)
        return 2
    if rep.failures and rep.gated:
        print(f"REGRESSION: {len(rep.failures)} failure(s):", file=sys.stderr)
        for f in rep.failures:
            print(f"  {f}", file=sys.stderr)
    elif rep.failures:
        print(
            f"{len(rep.failures)} failure(s) not gating: the runs come from different machines",
            file=sys.stderr,
        )
    return rep.exit_code


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
    settings = Settings(
        factor=args.factor,
        alpha=args.alpha,
        compile_factor=args.compile_factor,
        min_samples=args.min_samples,
        fail_on=tuple(args.fail_on),
        allow_different_hardware=args.allow_different_hardware,
        n_boot=args.bootstrap,
        paired=getattr(args, "paired", False),
    )
    return compare(base, current, settings)
