"""What to measure: presets, grids, a :class:`Selection` and the configurations (specs) it
expands to on the backends present.

A *grid* is a product of variants × kernels × layer sizes × batch sizes × dtypes × device
counts. A preset is a list of grids (a batch-size sweep, a depth sweep, a device-count sweep...);
flags and ``--config FILE.toml`` replace a field in every grid of the preset (the command line
builds the :class:`Selection`, :mod:`bench.commands.options`). Combinations that cannot run (a
batch that does not split over the devices, more devices than the backend has) are not run;
they are listed with the reason in the run's metadata.

A *spec* is one configuration as a plain dict, so it can cross process boundaries::

    {"framework": "jax", "variant": "jit", "kernel": "update", "layer_sizes": [784, 10],
     "batch_size": 128, "dtype": "float32", "n_devices": 1, "n_processes": 1,
     "backend": "cpu", "device_kind": "cpu", "lr": 0.001, "options": {}, "grid": "batch",
     "config_id": "..."}

and ``"cached_compile": true`` where a grid asks for the cached compile too.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import (
    ALL_KERNELS,
    ALL_VARIANTS,
    COMPILE_OPTIONS,
    DEEP,
    DTYPES,
    JAX_VARIANTS,
    KERNELS,
    LOGREG,
    MODEL_VARIANTS,
    MULTI_DEVICE,
    PEER_VARIANTS,
    STANDARD_COMPILE,
    compiler_options,
    data_parallel_groups,
    framework,
    kernels_of,
    layouts_of,
    precision_of,
)
from .results import rows

Spec = dict[str, Any]
PRESETS = ("quick", "regress", "default", "full", "targets")
#: the presets timed with the short settings (:meth:`bench.protocol.TimingSettings.preset`)
SHORT_PRESETS = ("quick", "regress")
ALL_BACKENDS = ("cpu", "gpu", "tpu")
#: the learning rate of every configuration (the notebook's).
LR = 0.001

#: examples one ``scan`` call holds at most when ``--scan-steps`` is not given: scan fuses steps to
#: amortise dispatch, which only matters at small batches; at large ones a long call only
#: slows the sweep (S = 8 up to batch 1024, then 4 at 2048 and 2 at 4096 and above).
SCAN_EXAMPLES_PER_CALL = 8192
#: examples a worker loads for the epoch kernel: a whole training set.
EPOCH_EXAMPLES = 60000
EPOCH_WHO = (
    "the epoch kernel is the notebook's loop (notebook, jit) or the fused epoch (scan), 1 device"
)


@dataclasses.dataclass(frozen=True)
class Grid:
    name: str
    variants: tuple[str, ...]
    kernels: tuple[str, ...]
    layers: tuple[tuple[int, ...], ...]
    batch_sizes: tuple[int, ...]
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[int, ...] = (1,)
    #: float32 matmul precisions (bfloat16 rows have one arithmetic)
    precisions: tuple[str, ...] = ("highest",)
    #: weight-gradient layouts of the variants that can run several (notebook and the peers
    #: run their one)
    layouts: tuple[str, ...] = ("tuned",)
    #: also time the executable loaded from JAX's persistent compilation cache in a fresh
    #: process (:mod:`bench.measure.cached`; two child processes a configuration, seconds each)
    cached_compile: bool = False
    #: named sets of XLA compile options (:data:`bench.catalog.COMPILE_OPTIONS`): the
    #: compile-time against step-time axis
    compile_options: tuple[str, ...] = (STANDARD_COMPILE,)


def depth_layers(depths: Iterable[int], width: int) -> tuple[tuple[int, ...], ...]:
    """Layer sizes with ``d`` hidden layers of ``width`` units, for each ``d`` in ``depths``."""
    return tuple((784, *([width] * d), 10) for d in depths)


MULTI = tuple(sorted(MULTI_DEVICE))
EVERY = ALL_VARIANTS


def _quick() -> list[Grid]:
    return [
        Grid("batch", EVERY, KERNELS, (LOGREG, (784, 256, 256, 10)), (32, 256)),
        Grid("devices", MULTI, ("update",), (LOGREG, (784, 256, 256, 10)), (256,), devices=(2,)),
        # no cached compile: its two fresh processes cost ~4 s a configuration
        Grid("depth", ("jit",), ("update",), depth_layers((1, 2, 4), 128), (128,)),
    ]


def _regress() -> list[Grid]:
    """What ``nox -s regress`` checks within its minutes: every variant (the peers included),
    predict and update, a small and a large batch, one model; the multi-device variants on 2
    devices too. Not torch.compile: its cold compile, part of every measurement, takes 1-13 s,
    and a suspect is measured 2 x 13 times (``bench ab --variants torch-compile`` checks it)."""
    shape = (784, 256, 256, 10)
    checked = tuple(v for v in EVERY if v != "torch-compile")
    return [
        Grid("batch", checked, KERNELS, (shape,), (32, 256)),
        Grid("devices", MULTI, ("update",), (shape,), (256,), devices=(2,)),
    ]


def _default() -> list[Grid]:
    # ensemble trains K models per step (K times the work): fewer batch sizes
    eager = tuple(v for v in EVERY if v not in ("torch-compile", "ensemble"))
    return [
        Grid("batch", eager, ("update",), (LOGREG, DEEP), (1, 32, 128, 1024, 4096)),
        # predict at both ends and the middle: the batch sweep's minutes go to the update
        Grid("batch", eager, ("predict",), (LOGREG, DEEP), (1, 128, 4096)),
        Grid("batch", ("ensemble",), KERNELS, (LOGREG, DEEP), (1, 128, 1024)),
        # torch.compile costs seconds per shape: its update at a small and a large batch
        Grid("compiled", ("torch-compile",), ("update",), (LOGREG, DEEP), (128, 4096)),
        Grid(
            "bfloat16",
            ("jit", "torch-eager"),
            ("update",),
            (LOGREG, DEEP),
            (32, 128, 1024, 4096),
            dtypes=("bfloat16",),
            layouts=("tuned", "packed"),
        ),
        Grid("devices", MULTI, ("update",), (LOGREG,), (128, 4096), devices=(2, 4)),
        Grid("devices", MULTI, ("update",), (DEEP,), (128, 1024), devices=(2, 4)),
        Grid("depth", JAX_VARIANTS, ("update",), depth_layers((1, 2, 4, 8), 512), (128,)),
        # cold vs cached compile, shallow and deep: the one-device jit and the fused scan (a
        # cached compile costs two fresh processes, ~4 s; --cached-compile asks it of all)
        Grid(
            "depth",
            ("jit", "scan"),
            ("update",),
            depth_layers((1, 8), 512),
            (128,),
            cached_compile=True,
        ),
        # compile harder or faster: XLA's own options against fast-compile, same kernels
        Grid(
            "compile",
            ("jit", "scan"),
            ("update",),
            depth_layers((1, 2, 4, 8), 512),
            (128,),
            compile_options=(STANDARD_COMPILE, "fast-compile"),
        ),
        # without YNNPACK's fusions, where the targets are held: the thin network's step, and
        # the deep net's predict at the large batch (Eigen's dots are faster for both here)
        Grid(
            "compile",
            ("jit",),
            KERNELS,
            (LOGREG,),
            (128, 4096),
            compile_options=("no-ynnpack",),
        ),
        Grid("compile", ("jit",), ("predict",), (DEEP,), (4096,), compile_options=("no-ynnpack",)),
        # YNNPACK for the dots alone: the thin predict's log-softmax in XLA's own loops
        Grid(
            "compile", ("jit",), ("predict",), (LOGREG,), (4096,), compile_options=("ynnpack-dots",)
        ),
        # stock jax.grad beside the tuned layout, for the cells the peers are compared in
        Grid(
            "stock",
            ("jit",),
            ("update",),
            (LOGREG, DEEP),
            (32, 128, 1024, 4096),
            layouts=("stock",),
        ),
        # a whole Fashion-MNIST epoch: the notebook's own loop, the jit step's and the fused
        # epoch (with XLA's own options and without YNNPACK's dot fusions)
        Grid("epoch", ("notebook", "jit", "scan"), ("epoch",), (LOGREG,), (128,)),
        Grid("epoch", ("scan",), ("epoch",), (LOGREG,), (128,), compile_options=("no-ynnpack",)),
        Grid("epoch", ("scan",), ("epoch",), (DEEP,), (128,)),
    ]


def _full() -> list[Grid]:
    batches = (1, 8, 32, 128, 512, 1024, 2048, 4096, 8192)
    shapes = (LOGREG, (784, 256, 10), DEEP, (784, 4096, 4096, 10))
    widths = tuple((784, w, w, 10) for w in (64, 128, 256, 512, 1024, 2048, 4096))
    return [
        Grid("batch", EVERY, KERNELS, shapes, batches, dtypes=DTYPES),
        Grid("devices", MULTI, KERNELS, (LOGREG, DEEP), batches, DTYPES, devices=(1, 2, 4, 8)),
        Grid(
            "depth",
            JAX_VARIANTS,
            KERNELS,
            depth_layers((1, 2, 3, 4, 6, 8, 12, 16), 512),
            (128, 1024),
            cached_compile=True,
        ),
        Grid(
            "compile",
            JAX_VARIANTS,
            KERNELS,
            depth_layers((1, 2, 4, 8, 16), 512),
            (128, 1024),
            compile_options=tuple(COMPILE_OPTIONS),
        ),
        Grid("width", ("jit", "scan", "sharded_tp", "torch-eager"), ("update",), widths, (1024,)),
        Grid(
            "epoch",
            ("notebook", "jit", "scan"),
            ("epoch",),
            (LOGREG, DEEP),
            (128, 1024),
            compile_options=(STANDARD_COMPILE, "no-ynnpack"),
        ),
    ]


def _targets() -> list[Grid]:
    """The rows the targets table holds (:mod:`bench.report.targets`), and no others: the peers'
    cells in float32 and bfloat16 (each of JAX's layouts for bfloat16), predict and the update at
    the large batch without YNNPACK's fusions (and the thin predict with YNNPACK's dots alone),
    the epochs. About 3 minutes on 2 cores."""
    cells = (32, 128, 1024, 4096)
    return [
        Grid("batch", ("jit", "scan", "torch-eager"), ("update",), (LOGREG, DEEP), cells),
        Grid("batch", ("jit",), ("predict",), (LOGREG, DEEP), (4096,)),
        Grid(
            "bfloat16",
            ("jit", "torch-eager"),
            ("update",),
            (LOGREG, DEEP),
            cells,
            dtypes=("bfloat16",),
            layouts=("tuned", "packed"),
        ),
        Grid("compiled", ("torch-compile",), ("update",), (LOGREG, DEEP), (128, 4096)),
        Grid(
            "compile", ("jit",), KERNELS, (LOGREG, DEEP), (4096,), compile_options=("no-ynnpack",)
        ),
        Grid(
            "compile", ("jit",), ("predict",), (LOGREG,), (4096,), compile_options=("ynnpack-dots",)
        ),
        Grid("epoch", ("notebook", "jit", "scan"), ("epoch",), (LOGREG,), (128,)),
        Grid("epoch", ("scan",), ("epoch",), (LOGREG,), (128,), compile_options=("no-ynnpack",)),
        Grid("epoch", ("scan",), ("epoch",), (DEEP,), (128,)),
    ]


def preset(name: str) -> list[Grid]:
    """The grids of a preset; see the README for what each costs."""
    presets = {
        "quick": _quick,
        "regress": _regress,
        "default": _default,
        "full": _full,
        "targets": _targets,
    }

    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; pick one of {', '.join(PRESETS)}")
    return presets[name]()


def override(grids: list[Grid], **fields: Any) -> list[Grid]:
    """Replace the given fields (those not None) in every grid."""
    given = {k: tuple(v) for k, v in fields.items() if v is not None}
    return [dataclasses.replace(g, **given) for g in grids]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a command measures: the grids, and what every configuration of them shares.

    Attributes:
      grids: the grids (a preset's, with the fields the user gave replaced).
      preset: the preset the grids and the timing settings come from.
      backends: the backends asked for (those present are measured).
      options: per-variant options, like ``{"scan": {"steps": 4}}``.
      dataset: where the workers take their batches from.
      data_dir: where the dataset's files are, if not in the usual places.
      dataset_named: the user named the data (``--dataset`` or ``--data-dir``): failing to read
        it is an error, not a fall back to synthetic batches.
    """

    grids: tuple[Grid, ...]
    preset: str = "default"
    backends: tuple[str, ...] = ALL_BACKENDS
    options: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    dataset_named: bool = False

    @property
    def requested_backends(self) -> str:
        """The backends as recorded in metadata: ``all`` or a comma list."""
        return "all" if tuple(self.backends) == ALL_BACKENDS else ",".join(self.backends)

    def expand(
        self, backends: dict[str, dict[str, Any]], peers_missing: str | None = None
    ) -> tuple[list[Spec], list[dict[str, str]]]:
        """:func:`expand` of these grids and options on the present ``backends``."""
        opts = {k: dict(v) for k, v in self.options.items()}
        return expand(
            list(self.grids), backends=backends, options=opts, peers_missing=peers_missing
        )


def expand(
    grids: list[Grid],
    *,
    backends: dict[str, dict[str, Any]],
    lr: float = LR,
    options: dict[str, dict[str, Any]] | None = None,
    peers_missing: str | None = None,
) -> tuple[list[Spec], list[dict[str, str]]]:
    """Specs for every grid point on every present backend, and what was left out and why.

    Args:
      backends: present backends -> probe info (``device_kind``, ``device_count``).
      options: per-variant options (``{"scan": {"steps": 8}}``).
      peers_missing: reason the torch peers cannot run (None when PyTorch is installed).

    Raises:
      ValueError: an unknown variant, kernel or dtype in a grid.
    """
    specs: dict[str, Spec] = {}
    skipped: dict[str, str] = {}
    options = options or {}
    for g, (backend, info) in itertools.product(grids, backends.items()):
        for variant, kernel, sizes, batch, dtype, n in itertools.product(
            g.variants, g.kernels, g.layers, g.batch_sizes, g.dtypes, g.devices
        ):
            _check(variant, kernel, dtype)
            own = layouts_of(variant)
            for layout in (lay for lay in g.layouts if len(own) > 1 and lay not in own):
                skipped[f"{variant} {layout}"] = (
                    f"{variant} runs the {' or '.join(own)} layout, not {layout} (packed: the "
                    "one-device variants)"
                )
            if n > 1 and variant not in MULTI_DEVICE:
                if 1 not in g.devices:  # else measured at n = 1, nothing is left out
                    skipped[f"{variant} x{n}"] = (
                        f"{variant} runs on one device; --devices {n} applies to the "
                        f"multi-device variants ({', '.join(sorted(MULTI_DEVICE))})"
                    )
                continue  # single-device variants are measured at n = 1 only
            for (precision, layout), compiled in itertools.product(
                _arithmetic(g, variant, dtype), g.compile_options
            ):
                what = (
                    f"{variant} {kernel} {','.join(map(str, sizes))} batch {batch} {dtype} "
                    f"{precision} {layout} x{n} {backend}"
                    + ("" if compiled == STANDARD_COMPILE else f" {compiled}")
                )
                opts = _options(variant, kernel, batch, options)
                why = _why_not(variant, kernel, sizes, batch, n, backend, info, opts, peers_missing)
                why = why or _why_not_precision(precision, backend)
                why = why or _why_not_compiled(compiled, variant, kernel, backend)
                if why:
                    skipped[what] = why
                    continue
                spec = {
                    "framework": framework(variant),
                    "variant": variant,
                    "kernel": kernel,
                    "layer_sizes": list(sizes),
                    "batch_size": int(batch),
                    "dtype": dtype,
                    "precision": precision,
                    "grad_layout": layout,
                    "compile_options": compiled,
                    "n_devices": int(n),
                    "n_processes": int(info.get("n_processes", 1)),
                    "backend": backend,
                    "device_kind": info.get("device_kind"),
                    "lr": lr,
                    "options": opts,
                    "grid": g.name,
                }
                spec["config_id"] = rows.config_id(spec)
                kept = specs.setdefault(spec["config_id"], spec)
                if g.cached_compile and _cacheable(variant, kernel, info):
                    kept["cached_compile"] = True  # whichever grid asked for it
    return list(specs.values()), [{"what": w, "reason": r} for w, r in skipped.items()]


def nothing_to_run(left_out: list[dict[str, str]]) -> str:
    """Why a selection leaves no configuration: each reason once, with how many it left out."""
    by_reason: dict[str, list[str]] = {}
    for s in left_out:
        by_reason.setdefault(s["reason"], []).append(s["what"])
    lines = [
        f"\n  {reason} ({len(whats)} left out, e.g. {whats[0]})"
        for reason, whats in by_reason.items()
    ]
    return "the selection leaves no configuration to run:" + "".join(
        lines or ["\n  (no configuration was asked for)"]
    )


def _arithmetic(g: Grid, variant: str, dtype: str) -> list[tuple[str, str]]:
    """The (precision, layout) pairs a grid asks of ``variant`` in ``dtype``: one precision for
    bfloat16; a variant with one layout runs that one."""
    precisions = dict.fromkeys(precision_of(dtype, p) for p in g.precisions)
    own = layouts_of(variant)
    layouts = [lay for lay in g.layouts if lay in own] or ([own[0]] if len(own) == 1 else [])
    return [(p, lay) for p in precisions for lay in layouts]


def _why_not_precision(precision: str, backend: str) -> str | None:
    if precision == "tf32" and backend != "gpu":
        return f"TF32 is an NVIDIA GPU precision; {backend} float32 matmuls have none"
    return None


def _check(variant: str, kernel: str, dtype: str) -> None:
    if variant not in ALL_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(ALL_VARIANTS)}")
    if kernel not in ALL_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; pick from {', '.join(ALL_KERNELS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; pick from {', '.join(DTYPES)}")


def scan_steps(batch: int) -> int:
    """Default SGD steps per ``scan`` call at this batch size (see SCAN_EXAMPLES_PER_CALL)."""
    return max(2, min(8, SCAN_EXAMPLES_PER_CALL // max(batch, 1)))


def _why_not_compiled(name: str, variant: str, kernel: str, backend: str) -> str | None:
    """Why the compile options ``name`` cannot apply to this configuration, or None."""
    if name == STANDARD_COMPILE:
        return None
    if framework(variant) != "jax":
        return f"compile options ({name}) are XLA's: the JAX variants only"
    if variant == "pmap":
        return f"pmap takes no per-compile compiler options ({name}): jax.pmap has none"
    if compiler_options(name, backend) is None:
        return f"{name} has no compile options for {backend}"
    return None


def _cacheable(variant: str, kernel: str, info: dict[str, Any]) -> bool:
    """Whether a cached compile can be timed: a JAX update or predict of one process (the
    child processes of :mod:`bench.measure.cached` cannot join a distributed run)."""
    one_process = int(info.get("n_processes", 1)) == 1
    return framework(variant) == "jax" and kernel != "epoch" and one_process


def _options(variant: str, kernel: str, batch: int, options: dict[str, Any]) -> dict[str, Any]:
    """The options a spec carries: those given for its variant, and scan's steps per call."""
    opts = dict(options.get(variant, {}))
    if variant in MODEL_VARIANTS and MODEL_VARIANTS[variant].steps_option and kernel == "update":
        opts.setdefault(MODEL_VARIANTS[variant].steps_option, scan_steps(batch))
    return opts


def _why_not(variant, kernel, sizes, batch, n, backend, info, options, peers_missing) -> str | None:
    count = int(info.get("device_count", 1))
    if backend != "cpu" and n > count:
        return f"{n} devices asked for, {count} {backend} device(s) here"
    if variant in PEER_VARIANTS and framework(variant) == "torch" and peers_missing:
        return peers_missing
    if kernel not in kernels_of(variant):
        if kernel == "predict":
            return f"{variant} fuses SGD steps; its predict is the jit variant's (measured there)"
        return EPOCH_WHO
    if kernel == "epoch" and n != 1:
        return EPOCH_WHO
    if variant in MULTI_DEVICE:
        groups = data_parallel_groups(variant, n, options)
        if batch % groups:
            return f"batch_size {batch} is not divisible by {groups} data-parallel groups"
        if groups != n and any(w % (n // groups) for w in sizes[1:-1]):
            return f"hidden widths {sizes[1:-1]} do not split over model_parallel {n // groups}"
    return None


def groups(specs: list[Spec]) -> list[tuple[tuple[str, int], list[Spec]]]:
    """Specs grouped by the worker process they need (backend, devices that process has), each
    group :func:`interleaved`."""
    out: dict[tuple[str, int], list[Spec]] = {}
    for s in specs:
        key = (s["backend"], s["n_devices"] if s["backend"] == "cpu" else 0)
        out.setdefault(key, []).append(s)
    return [(key, interleaved(group)) for key, group in sorted(out.items())]


def cell(spec: Spec) -> tuple:
    """What the configurations compared with each other share: kernel, model, batch, dtype,
    precision (they differ in variant, framework, layout or devices)."""
    sizes = tuple(spec["layer_sizes"])
    return (spec["kernel"], len(sizes), sizes, spec["batch_size"], spec["dtype"], spec["precision"])


def interleaved(specs: list[Spec]) -> list[Spec]:
    """``specs`` ordered so that the configurations compared with each other are measured one
    after the other (round-robin over the variants of each cell), not in blocks of one variant:
    a slow spell of the machine then falls on a cell's variants alike, and the row it spoils
    stands out beside its neighbours instead of making a variant look slower everywhere."""
    return sorted(specs, key=lambda s: cell({"precision": None, **s}))


def arithmetic(specs: list[Spec]) -> dict[str, list[str]]:
    """The arithmetic a run's matmuls computed in (its metadata's ``arithmetic``)."""
    return {
        "precisions": sorted({s["precision"] for s in specs}),
        "grad_layouts": sorted({s["grad_layout"] for s in specs}),
    }


def peak_keys(specs: list[Spec]) -> list[str]:
    """The peaks the rows of ``specs`` are measured against: one per arithmetic."""
    return sorted({rows.peak_key(s["dtype"], s.get("precision")) for s in specs})


def thin_batches(specs: list[Spec]) -> list[int]:
    """The batch sizes of the ``[784, 10]`` rows measured against the dot ceilings of their own
    shapes (:func:`bench.results.rows.thin_ceiling`): float32 at full precision."""
    return sorted(
        {
            int(s["batch_size"])
            for s in specs
            if rows.thin_ceiling_applies({**s, "layer_sizes": ",".join(map(str, s["layer_sizes"]))})
        }
    )


def n_examples(specs: list[Spec]) -> int:
    """Examples the workers load: enough for the biggest call, a whole training set for the
    epoch kernel."""
    if any(s["kernel"] == "epoch" for s in specs):
        return EPOCH_EXAMPLES
    sizes = [int(s["batch_size"]) * max(_steps(s), 1) for s in specs]
    return max(sizes, default=1)


def _steps(spec: Spec) -> int:
    v = MODEL_VARIANTS.get(spec["variant"])
    return int(spec["options"].get(v.steps_option, 8)) if v and v.steps_option else 1
