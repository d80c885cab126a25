"""What a sweep measures: presets, grids and the list of configurations (specs) they expand to.

A *grid* is a product of variants × kernels × layer sizes × batch sizes × dtypes × device
counts. A preset is a list of grids (a batch-size sweep, a depth sweep, a device-count sweep...);
flags and ``--config FILE.toml`` replace a field in every grid of the preset. Combinations that
cannot run (a batch that does not split over the devices, more devices than the backend has)
are not run; they are listed with the reason in the run's metadata.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import Any

JAX_VARIANTS = ("jit", "vmap", "pmap", "sharded", "shard_map", "scan", "sharded_tp", "ensemble")
PEER_VARIANTS = ("torch-eager", "torch-compile", "numpy")
PEER_FRAMEWORK = {"torch-eager": "torch", "torch-compile": "torch", "numpy": "numpy"}
MULTI_DEVICE = {"pmap", "sharded", "shard_map", "sharded_tp"}
KERNELS = ("update", "predict")
#: every kernel: ``epoch`` (a whole training epoch) only where a grid asks for it.
ALL_KERNELS = (*KERNELS, "epoch")
DTYPES = ("float32", "bfloat16")
PRESETS = ("quick", "default", "full")

#: examples one ``scan`` call holds at most when ``--scan-steps`` is not given: scan fuses steps to
#: amortise dispatch, which only matters at small batches; at large ones a long call only
#: slows the sweep (S = 8 up to batch 1024, then 4 at 2048 and 2 at 4096 and above).
SCAN_EXAMPLES_PER_CALL = 8192

LOGREG = (784, 10)
DEEP = (784, 1024, 1024, 10)


@dataclasses.dataclass(frozen=True)
class Grid:
    name: str
    variants: tuple[str, ...]
    kernels: tuple[str, ...]
    layers: tuple[tuple[int, ...], ...]
    batch_sizes: tuple[int, ...]
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[int, ...] = (1,)


def _depth_layers(depths: Iterable[int], width: int) -> tuple[tuple[int, ...], ...]:
    return tuple((784, *([width] * d), 10) for d in depths)


def preset(name: str) -> list[Grid]:
    """The grids of a preset; see the README for what each costs."""
    every = JAX_VARIANTS + PEER_VARIANTS
    if name == "quick":
        return [
            Grid("batch", every, KERNELS, (LOGREG, (784, 256, 256, 10)), (32, 256)),
            Grid(
                "devices",
                tuple(sorted(MULTI_DEVICE)),
                ("update",),
                (LOGREG, (784, 256, 256, 10)),
                (256,),
                devices=(2,),
            ),
            Grid("depth", ("jit",), ("update",), _depth_layers((1, 2, 4), 128), (128,)),
        ]
    if name == "default":
        # ensemble trains K models per step (K times the work): fewer batch sizes
        eager = tuple(v for v in every if v not in ("torch-compile", "ensemble"))
        return [
            Grid("batch", eager, KERNELS, (LOGREG, DEEP), (1, 32, 128, 1024, 4096)),
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
            ),
            Grid(
                "devices",
                tuple(sorted(MULTI_DEVICE)),
                ("update",),
                (LOGREG,),
                (128, 4096),
                devices=(2, 4),
            ),
            Grid(
                "devices",
                tuple(sorted(MULTI_DEVICE)),
                ("update",),
                (DEEP,),
                (128, 1024),
                devices=(2, 4),
            ),
            Grid("depth", JAX_VARIANTS, ("update",), _depth_layers((1, 2, 4, 8), 512), (128,)),
            # a whole Fashion-MNIST epoch: the notebook's loop against the fused one
            Grid("epoch", ("jit", "scan"), ("epoch",), (LOGREG,), (128,)),
            Grid("epoch", ("scan",), ("epoch",), (DEEP,), (128,)),
        ]
    if name == "full":
        batches = (1, 8, 32, 128, 512, 1024, 2048, 4096, 8192)
        return [
            Grid(
                "batch",
                every,
                KERNELS,
                (LOGREG, (784, 256, 10), DEEP, (784, 4096, 4096, 10)),
                batches,
                dtypes=DTYPES,
            ),
            Grid(
                "devices",
                tuple(sorted(MULTI_DEVICE)),
                KERNELS,
                (LOGREG, DEEP),
                batches,
                dtypes=DTYPES,
                devices=(1, 2, 4, 8),
            ),
            Grid(
                "depth",
                JAX_VARIANTS,
                KERNELS,
                _depth_layers((1, 2, 3, 4, 6, 8, 12, 16), 512),
                (128, 1024),
            ),
            Grid(
                "width",
                ("jit", "scan", "sharded_tp", "torch-eager"),
                ("update",),
                tuple((784, w, w, 10) for w in (64, 128, 256, 512, 1024, 2048, 4096)),
                (1024,),
            ),
            Grid("epoch", ("jit", "scan"), ("epoch",), (LOGREG, DEEP), (128, 1024)),
        ]
    raise ValueError(f"unknown preset {name!r}; pick one of {', '.join(PRESETS)}")


def override(grids: list[Grid], **fields: Any) -> list[Grid]:
    """Replace the given fields (those not None) in every grid."""
    given = {k: tuple(v) for k, v in fields.items() if v is not None}
    return [dataclasses.replace(g, **given) for g in grids]


def parse_layers(text: str | Iterable[int]) -> tuple[int, ...]:
    """``"784,1024,10"`` (or a list of ints) -> ``(784, 1024, 10)``, checked."""
    if isinstance(text, str):
        try:
            sizes = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
        except ValueError:
            raise ValueError(
                f"layer sizes {text!r}: write integers separated by commas, like 784,1024,1024,10"
            ) from None
    else:
        sizes = tuple(int(s) for s in text)
    if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10 or min(sizes) < 1:
        raise ValueError(
            f"layer sizes {sizes}: must start with 784 (28x28 pixels), end with 10 "
            "(classes) and have positive widths, like 784,1024,1024,10"
        )
    return sizes


def n_params(sizes: tuple[int, ...]) -> int:
    return sum(m * n + n for m, n in itertools.pairwise(sizes))


def expand(
    grids: list[Grid],
    *,
    backends: dict[str, dict[str, Any]],
    lr: float = 0.001,
    options: dict[str, dict[str, Any]] | None = None,
    peers_missing: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Specs for every grid point on every present backend, and what was left out and why.

    Args:
      backends: present backends -> probe info (``device_kind``, ``device_count``).
      options: per-variant options (``{"scan": {"steps": 8}}``).
      peers_missing: reason the torch peers cannot run (None when PyTorch is installed).
    """
    from .schema import config_id

    specs: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    options = options or {}
    for g, (backend, info) in itertools.product(grids, backends.items()):
        for variant, kernel, sizes, batch, dtype, n in itertools.product(
            g.variants, g.kernels, g.layers, g.batch_sizes, g.dtypes, g.devices
        ):
            what = f"{variant} {kernel} {','.join(map(str, sizes))} batch {batch} {dtype} x{n} {backend}"
            if variant not in JAX_VARIANTS + PEER_VARIANTS:
                raise ValueError(
                    f"unknown variant {variant!r}; known: {', '.join(JAX_VARIANTS + PEER_VARIANTS)}"
                )
            if kernel not in ALL_KERNELS:
                raise ValueError(f"unknown kernel {kernel!r}; pick from {', '.join(ALL_KERNELS)}")
            if dtype not in DTYPES:
                raise ValueError(f"unknown dtype {dtype!r}; pick from {', '.join(DTYPES)}")
            if n > 1 and variant not in MULTI_DEVICE:
                continue  # single-device variants are measured at n = 1 only
            reason = _why_not(variant, kernel, sizes, batch, n, backend, info, peers_missing)
            if reason:
                skipped[what] = reason
                continue
            spec = {
                "framework": PEER_FRAMEWORK.get(variant, "jax"),
                "variant": variant,
                "kernel": kernel,
                "layer_sizes": list(sizes),
                "batch_size": int(batch),
                "dtype": dtype,
                "n_devices": int(n),
                "n_processes": int(info.get("n_processes", 1)),
                "backend": backend,
                "device_kind": info.get("device_kind"),
                "lr": lr,
                "options": _options(variant, kernel, batch, options),
                "grid": g.name,
            }
            row = dict(spec, layer_sizes=",".join(map(str, sizes)))
            spec["config_id"] = config_id(row)
            specs.setdefault(spec["config_id"], spec)
    return list(specs.values()), [{"what": w, "reason": r} for w, r in skipped.items()]


def scan_steps(batch: int) -> int:
    """Default SGD steps per ``scan`` call at this batch size (see SCAN_EXAMPLES_PER_CALL)."""
    return max(2, min(8, SCAN_EXAMPLES_PER_CALL // max(batch, 1)))


def _options(variant, kernel, batch, options) -> dict[str, Any]:
    opts = dict(options.get(variant, {}))
    if variant == "scan" and kernel == "update":
        opts.setdefault("steps", scan_steps(batch))
    return opts


def _why_not(variant, kernel, sizes, batch, n, backend, info, peers_missing) -> str | None:
    count = int(info.get("device_count", 1))
    if backend != "cpu" and n > count:
        return f"{n} devices asked for, {count} {backend} device(s) here"
    if variant in PEER_VARIANTS:
        if PEER_FRAMEWORK[variant] == "torch" and peers_missing:
            return peers_missing
        return None
    if kernel == "epoch" and (variant not in ("jit", "scan") or n != 1):
        return "the epoch kernel is the notebook's loop (jit) or the fused epoch (scan), 1 device"
    if variant == "scan" and kernel == "predict":
        return "scan fuses SGD steps; its predict is the jit variant's (measured there)"
    if variant in MULTI_DEVICE:
        groups = n // 2 if variant == "sharded_tp" and n % 2 == 0 else n
        if batch % groups:
            return f"batch_size {batch} is not divisible by {groups} data-parallel groups"
        if variant == "sharded_tp" and n % 2 == 0 and any(w % 2 for w in sizes[1:-1]):
            return f"hidden widths {sizes[1:-1]} do not split over model_parallel 2"
    return None


def order_for_workers(specs: list[dict[str, Any]]) -> list[tuple[tuple[str, int], list[dict]]]:
    """Specs grouped by the worker process they need: (backend, devices that process has)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for s in specs:
        key = (s["backend"], s["n_devices"] if s["backend"] == "cpu" else 0)
        groups.setdefault(key, []).append(s)
    return sorted(groups.items())
