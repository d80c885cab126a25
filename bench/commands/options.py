"""The flags several commands share, defined once: those that select what to measure (``run``,
``ab``), those that set the rule a comparison judges by (``compare``, ``ab``, ``validate``), the
``--config FILE.toml`` file, and the :class:`~bench.selection.Selection` built from them."""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from mnist_kernels.argtypes import count, csv, ints, positive_float, positive_int
from mnist_kernels.argtypes import layers as layer_sizes

from .. import catalog, protocol, selection, stats
from ..protocol import TimingSettings
from ..regression.verdicts import DEFAULT_COMPILE_FACTOR, FAIL_ON_CHOICES, CompareSettings
from ..runner import ab
from ..runner.pool import DEFAULT_TIMEOUT_S
from ..selection import Selection

# --- value types -------------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def factor(text: str) -> float:
    f = _number(text)
    if not f >= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1 (e.g. 1.10 for +10%)")
    return f


def alpha(text: str) -> float:
    a = _number(text)
    if not 0.0 < a < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1 (e.g. 0.01)")
    return a


def passes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of passes, 1 or more")
    return value


def fail_on(text: str) -> tuple[str, ...]:
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


# --- what to measure ---------------------------------------------------------------------------


def _add_compile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compile-options",
        type=csv,
        help="named sets of XLA compile options, a comma list measures each: "
        f"{', '.join(catalog.COMPILE_OPTIONS)} (standard: XLA's own, the default; fast-compile "
        "trades step time for compile time; no-ynnpack and ynnpack-dots: where XLA:CPU runs the dots "
        "and reductions); the JAX variants but pmap",
    )
    p.add_argument(
        "--cached-compile",
        action="store_true",
        default=None,
        help="also time every JAX configuration's executable loaded from the persistent "
        "compilation cache in a fresh process (two child processes each, seconds a "
        "configuration; the default and --full presets ask it of their depth sweep)",
    )


#: the presets' own flags (the default preset has none), with their help
PRESET_FLAGS = {
    "quick": "a small sweep (about a minute on 2 cores)",
    "regress": "what nox -s regress checks: every variant, both kernels, a small and a large batch",
    "full": "everything: more batch sizes, widths, depths and both dtypes",
    "targets": "only what the report's targets table holds: the peers' cells, the bounds, the "
    "epochs (about 3 minutes on 2 cores)",
}


def add_selection_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that choose the configurations (every grid of the preset has its fields
    replaced by the ones given), and ``--config``."""
    g = p.add_mutually_exclusive_group()
    for name, text in PRESET_FLAGS.items():
        g.add_argument(f"--{name}", dest="preset", action="store_const", const=name, help=text)
    p.add_argument("--preset", choices=selection.PRESETS, default=None, help=argparse.SUPPRESS)

    p.add_argument(
        "--variants",
        type=csv,
        help=f"comma list from {', '.join(catalog.ALL_VARIANTS)} "
        "(default: all, peers included when installed)",
    )
    p.add_argument(
        "--kernels",
        type=csv,
        help="update, predict or epoch (a whole training epoch); default: update and predict",
    )
    p.add_argument(
        "--layers", action="append", help="layer sizes like 784,1024,1024,10; repeat for several"
    )
    p.add_argument(
        "--depths", type=ints, help="depth sweep: numbers of hidden layers (with --width)"
    )
    p.add_argument(
        "--width", type=positive_int, default=512, help="hidden width for --depths (512)"
    )
    p.add_argument("--batch-sizes", type=ints, help="comma list, like 1,32,128,1024,4096")
    p.add_argument("--dtypes", type=csv, help="float32, bfloat16 or both")
    p.add_argument(
        "--precision",
        type=csv,
        help="float32 matmul precision: highest (full float32, the default), tf32 (NVIDIA GPUs) "
        "or default (the backend's own: TF32 on NVIDIA GPUs); a comma list measures each",
    )
    p.add_argument(
        "--grad-layout",
        type=csv,
        help="weight-gradient layout of the JAX variants: tuned (the default) or stock "
        "(jax.grad's); a comma list measures each",
    )
    _add_compile_arguments(p)
    p.add_argument("--devices", type=ints, help="device counts, like 1,2,4 (CPU: fake devices)")
    p.add_argument(
        "--backends", default=None, help="cpu,gpu,tpu or all: whatever is present (default all)"
    )
    p.add_argument(
        "--scan-steps",
        type=positive_int,
        default=None,
        help="SGD steps per scan call (default: 8, fewer above batch 1024)",
    )
    p.add_argument("--members", type=positive_int, default=None, help="ensemble members (4)")
    p.add_argument("--dataset", default=None, help="fashion-mnist (default), mnist or synthetic")
    p.add_argument("--data-dir", default=None, help="where the IDX files are (see README)")
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="the same keys in a TOML file (flags given on the line win)",
    )


def _text(value: object) -> str:
    """A TOML value as it would be written after its flag (lists comma-joined)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
        raise argparse.ArgumentTypeError(f"{value!r} is not a value its flag takes")
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise argparse.ArgumentTypeError(f"{value!r}: write a list of names or numbers")
        return ",".join(str(v) for v in value)
    return str(value)


def _layer_list(value: object) -> list[str]:
    """``layers``: ``"784,10"``, ``["784,10", "784,256,10"]`` or ``[[784, 10]]``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise argparse.ArgumentTypeError(
            f'{value!r}: write layer sizes like "784,10" or a list of them'
        )
    out = []
    for item in items:
        text = _text(item)
        layer_sizes(text)  # the flag's own check
        out.append(text)
    return out


def _flag(kind):
    """A TOML key's value read with its flag's type."""
    return lambda value: kind(_text(value))


def _switch(value: object) -> bool:
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"{value!r}: write true or false")
    return value


def _preset(value: object) -> str:
    if value not in selection.PRESETS:
        raise argparse.ArgumentTypeError(f"{value!r}: one of {', '.join(selection.PRESETS)}")
    return str(value)


#: the keys a ``--config`` file may hold (the ``bench run`` flags, underscored), each read with
#: its flag's own rules
TOML_KEYS = {
    "preset": _preset,
    "variants": _flag(csv),
    "kernels": _flag(csv),
    "layers": _layer_list,
    "depths": _flag(ints),
    "width": _flag(positive_int),
    "batch_sizes": _flag(ints),
    "dtypes": _flag(csv),
    "precision": _flag(csv),
    "grad_layout": _flag(csv),
    "compile_options": _flag(csv),
    "devices": _flag(ints),
    "backends": _flag(str),
    "scan_steps": _flag(positive_int),
    "members": _flag(positive_int),
    "dataset": _flag(str),
    "data_dir": _flag(str),
    "out": _flag(str),
    "timeout": _flag(positive_float),
    "repeats": _flag(passes),
    "cached_compile": _switch,
    "no_peaks": _switch,
    "quiet": _switch,
}


def merge_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill flags not given on the command line from ``--config FILE.toml``, each value checked
    by its flag's rules before anything runs.

    Raises:
      ValueError: the file cannot be read, holds an unknown key or a value its flag refuses.
    """
    if not getattr(args, "config", None):
        return args
    path = Path(args.config)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"--config {path}: {e}") from None
    doc = doc.get("bench", doc)
    unknown = set(doc) - set(TOML_KEYS)
    if unknown:
        raise ValueError(
            f"--config {path}: unknown keys {sorted(unknown)}; known: {sorted(TOML_KEYS)}"
        )
    for key, value in doc.items():
        try:
            parsed = TOML_KEYS[key](value)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ValueError(f"--config {path}: {key} = {value!r}: {e}") from None
        if getattr(args, key, None) in (None, False):
            setattr(args, key, parsed)
    return args


def backends_of(text: str | None) -> tuple[str, ...]:
    """``--backends``: ``all`` (or nothing) is every backend."""
    return selection.ALL_BACKENDS if text in (None, "all") else tuple(csv(text))


def selection_from(args: argparse.Namespace) -> Selection:
    """The :class:`Selection` the flags (merged with ``--config``) ask for.

    Raises:
      ValueError: an unknown variant, kernel or dtype, bad layer sizes, a count below 1.
    """
    args = merge_config(args)
    grids = selection.preset(args.preset or "default")
    layers = None
    if args.layers or args.depths:
        layers = [catalog.parse_layers(x) for x in (args.layers or [])]
        layers += list(selection.depth_layers(args.depths or [], args.width))
    for kind, given in (
        ("variants", args.variants),
        ("kernels", args.kernels),
        ("dtypes", args.dtypes),
        ("precisions", args.precision),
        ("grad-layouts", args.grad_layout),
        ("compile-options", getattr(args, "compile_options", None)),
    ):
        catalog.check_known(kind, given)
    if any(b < 1 for b in args.batch_sizes or []) or any(d < 1 for d in args.devices or []):
        raise ValueError("--batch-sizes and --devices must be positive integers")
    grids = selection.override(
        grids,
        variants=args.variants,
        kernels=args.kernels,
        layers=layers,
        batch_sizes=args.batch_sizes,
        dtypes=args.dtypes,
        devices=args.devices,
        precisions=args.precision,
        layouts=args.grad_layout,
        compile_options=getattr(args, "compile_options", None),
    )
    if getattr(args, "cached_compile", None):
        grids = [dataclasses.replace(g, cached_compile=True) for g in grids]
    options = {"scan": {"steps": args.scan_steps}, "ensemble": {"members": args.members}}
    options = {
        k: catalog.MODEL_VARIANTS[k].check_options(v)
        for k, v in options.items()
        if all(x is not None for x in v.values())
    }
    return Selection(
        grids=tuple(grids),
        preset=args.preset or "default",
        backends=backends_of(args.backends),
        options=options,
        dataset=args.dataset or "fashion-mnist",
        data_dir=args.data_dir,
        dataset_named=args.dataset is not None or args.data_dir is not None,
    )


# --- how an A/B measures (bench ab, bench validate) -------------------------------------------


def add_ab_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of an interleaved A/B's measurement: passes, confirmation, retries, timeout."""
    repeats = "N screening passes over the configurations, fresh workers each (default: 3)"
    confirm = "fresh interleaved passes for each configuration the screening finds slower, "
    confirm += "which alone judge it; 0: judge every configuration on its N passes (default: "
    confirm += f"{ab.DEFAULT_CONFIRM_PASSES})"
    load = f"measure both sides again (up to {ab.DEFAULT_RETRIES} times) when other jobs used more "
    load += "than this share of the CPUs meanwhile (default: %(default)s)"
    p.add_argument("--repeats", type=positive_int, default=3, metavar="N", help=repeats)
    p.add_argument(
        "--confirm", type=count, default=ab.DEFAULT_CONFIRM_PASSES, metavar="K", help=confirm
    )
    p.add_argument(
        "--max-suspects",
        type=positive_int,
        default=ab.MAX_SUSPECTS,
        metavar="M",
        help="confirm at most this many suspects, the most suspect first (default: %(default)s)",
    )
    p.add_argument("--max-foreign-load", type=float, default=ab.DEFAULT_MAX_FOREIGN_LOAD, help=load)
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help=f"seconds per configuration before it is killed ({DEFAULT_TIMEOUT_S:.0f})",
    )
    p.add_argument("--quiet", action="store_true", help="no line per configuration")


def ab_from(
    args: argparse.Namespace, chosen: Selection, specs: list[dict]
) -> tuple[dict, ab.AbSettings]:
    """The workers' init request and the :class:`~bench.runner.ab.AbSettings` the flags ask
    for."""
    data_dir = str(Path(chosen.data_dir).resolve()) if chosen.data_dir else None
    timing = TimingSettings.preset(chosen.preset)
    init = protocol.init(chosen.dataset, data_dir, selection.n_examples(specs), timing)
    settings = ab.AbSettings(
        passes=args.repeats,
        timeout=args.timeout or DEFAULT_TIMEOUT_S,
        max_foreign_load=args.max_foreign_load,
        quiet=args.quiet,
        confirm=max(0, args.confirm),
        max_suspects=args.max_suspects,
    )
    return init, settings


# --- how to judge ------------------------------------------------------------------------------


def add_rule_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of the rule a comparison judges by (``compare``'s, which ``ab`` shares)."""
    p.add_argument(
        "--factor",
        type=factor,
        metavar="X",
        default=stats.DEFAULT_FACTOR,
        help="a step time is slower only when median(current)/median(baseline) exceeds this "
        "(and the difference is significant) (default: %(default)s)",
    )
    p.add_argument(
        "--alpha",
        type=alpha,
        metavar="P",
        default=stats.DEFAULT_ALPHA,
        help="family-wise significance level: the chance that comparing identical code calls any "
        "configuration slower, by a t test over passes (one worker process each) with Holm's "
        "correction across configurations (default: %(default)s)",
    )
    p.add_argument(
        "--compile-factor",
        type=factor,
        metavar="X",
        default=DEFAULT_COMPILE_FACTOR,
        help="compile time (trace+lower+compile from cold caches, each pass's median) is "
        "slower when its ratio exceeds this and the t test over passes, Holm-corrected, says "
        "so at --alpha; one pass a side is not judged (default: %(default)s)",
    )
    p.add_argument(
        "--min-samples",
        type=positive_int,
        metavar="N",
        default=stats.DEFAULT_MIN_SAMPLES,
        help="fewer raw samples than this on either side: never significant, verdict 'same' "
        "with a note (default: %(default)s)",
    )
    p.add_argument(
        "--fail-on",
        type=fail_on,
        default=("step",),
        metavar="LIST",
        help="comma-separated metrics whose regressions fail (exit 1): step (step time), "
        "compile (compile time, --compile-factor), hlo (any change in recompiles, XLA flops, "
        "bytes accessed, peak memory, HLO op or fusion counts, or recompiles > 0 in CURRENT); "
        "'none' only reports (default: step)",
    )
    p.add_argument(
        "--allow-different-hardware",
        action="store_true",
        help="gate even when the two sides' hardware fingerprints differ (by default that is "
        "only a warning and the exit code is 0)",
    )


def rule_from(
    args: argparse.Namespace, *, paired: bool = False, n_boot: int = 2000
) -> CompareSettings:
    """The :class:`CompareSettings` the rule flags ask for (``paired``: an interleaved A/B)."""
    return CompareSettings(
        factor=args.factor,
        alpha=args.alpha,
        compile_factor=args.compile_factor,
        min_samples=args.min_samples,
        fail_on=tuple(args.fail_on),
        allow_different_hardware=args.allow_different_hardware,
        n_boot=n_boot,
        paired=paired,
    )
