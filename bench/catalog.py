"""What the benchmark can measure, in one place and without JAX: variants (the model's, from
:mod:`mnist_kernels.catalog`, and the peers in other frameworks), kernels, dtypes and the layer
sizes the presets use. The parent process plans with it; the worker checks requests against it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mnist_kernels.catalog import DTYPES as DTYPES
from mnist_kernels.catalog import EPOCH as EPOCH
from mnist_kernels.catalog import LAYOUTS as LAYOUTS
from mnist_kernels.catalog import PRECISIONS as PRECISIONS
from mnist_kernels.catalog import PREDICT as PREDICT
from mnist_kernels.catalog import UPDATE as UPDATE
from mnist_kernels.catalog import VARIANTS as MODEL_VARIANTS
from mnist_kernels.catalog import data_parallel_groups as data_parallel_groups
from mnist_kernels.catalog import flops_forward as flops_forward
from mnist_kernels.catalog import flops_update as flops_update
from mnist_kernels.catalog import is_multi_device as is_multi_device
from mnist_kernels.catalog import n_params as n_params
from mnist_kernels.catalog import parse_layers as parse_layers


@dataclasses.dataclass(frozen=True)
class Peer:
    """The same model and step in another framework, timed by the same code as the variants."""

    name: str
    framework: str
    summary: str
    kernels: tuple[str, ...] = (UPDATE, PREDICT)
    #: the weight gradient as its framework's autodiff (or the hand-written NumPy) forms it
    layouts: tuple[str, ...] = ("stock",)


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("torch-eager", "torch", "PyTorch autograd, SGD in place"),
        Peer("torch-compile", "torch", "the whole step in one torch.compile graph"),
        Peer("numpy", "numpy", "forward and backward by hand in float32 NumPy"),
    )
}

JAX_VARIANTS = tuple(MODEL_VARIANTS)
PEER_VARIANTS = tuple(PEERS)
ALL_VARIANTS = JAX_VARIANTS + PEER_VARIANTS
#: variants that spread one step over several devices.
MULTI_DEVICE = frozenset(v for v in JAX_VARIANTS if is_multi_device(v))
#: the kernels of the default grids; ``epoch`` (a whole training epoch) only where asked for.
KERNELS = (UPDATE, PREDICT)
ALL_KERNELS = (UPDATE, PREDICT, EPOCH)

#: XLA's own compile options: every row measured before the axis existed was compiled with them
STANDARD_COMPILE = "standard"
#: named sets of XLA compile options that trade compile time for step time, per backend, passed
#: as ``jax.jit``'s per-compile ``compiler_options`` (a row records the name; a backend a set
#: has no entry for does not run it). ``fast-compile``: on CPU, LLVM's backend optimisation
#: level 0 without its expensive passes (about half the compile of a deep update here); on
#: NVIDIA GPUs, no autotuning of the kernels' configurations. ``no-ynnpack``: on CPU, no
#: YNNPACK fusions (XLA's own kernels and Eigen run the dots and reductions instead): a thin
#: dot (10 outputs) runs about 1.5x faster so, a large bfloat16 one 2x slower.
#: ``ynnpack-dots``: on CPU, YNNPACK runs the dots alone and XLA's own loops the reductions
#: and elementwise ops (XLA's own options also give YNNPACK the reductions, which it runs about
#: 2x slower than XLA's loops over rows of 10 classes: the thin predict's log-softmax; see
#: docs/limits/predict-cpu-2c-epyc.md).
COMPILE_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    STANDARD_COMPILE: {"cpu": {}, "gpu": {}, "tpu": {}},
    "fast-compile": {
        "cpu": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True},
        "gpu": {"xla_gpu_autotune_level": 0},
    },
    "no-ynnpack": {"cpu": {"xla_cpu_experimental_ynn_fusion_type": ""}},
    "ynnpack-dots": {
        "cpu": {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
    },
}


#: the sets that aim at step time (``fast-compile`` gives it up for compile time): what a
#: ceiling is measured under (:mod:`bench.measure.ceilings`)
STEP_TIME_OPTIONS = (STANDARD_COMPILE, "no-ynnpack", "ynnpack-dots")


def compiler_options(name: str, backend: str) -> dict[str, Any] | None:
    """The XLA options of the set ``name`` on ``backend`` (``{}``: XLA's own), None where the set
    has none for that backend; ``ValueError`` naming the sets for an unknown name."""
    if name not in COMPILE_OPTIONS:
        raise ValueError(f"unknown compile options {name!r}; known: {', '.join(COMPILE_OPTIONS)}")
    return COMPILE_OPTIONS[name].get(backend)


#: logistic regression and the notebook's deep net: the two models every preset measures.
LOGREG = (784, 10)
DEEP = (784, 1024, 1024, 10)

#: the order variants are listed in tables and legends.
DISPLAY_ORDER = (
    "notebook",
    "jit",
    "vmap",
    "scan",
    "pmap",
    "sharded",
    "shard_map",
    "sharded_tp",
    "ensemble",
    *PEER_VARIANTS,
)


def framework(variant: str) -> str:
    """``jax`` for the model's variants, the peer's framework otherwise."""
    return PEERS[variant].framework if variant in PEERS else "jax"


def kernels_of(variant: str) -> tuple[str, ...]:
    """The kernels ``variant`` has; ``ValueError`` naming the known variants if it is unknown."""
    if variant in PEERS:
        return PEERS[variant].kernels
    if variant in MODEL_VARIANTS:
        return MODEL_VARIANTS[variant].kernels
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(ALL_VARIANTS)}")


#: the precision recorded for a bfloat16 row: every matmul on bfloat16 operands, float32 sums,
#: bfloat16 results (the float32 precision setting does not apply)
BF16 = "bf16"


def precision_of(dtype: str, precision: str) -> str:
    """The ``precision`` column of a row of ``dtype`` asked to run float32 matmuls at
    ``precision``."""
    return BF16 if dtype == "bfloat16" else precision


def layouts_of(variant: str) -> tuple[str, ...]:
    """The weight-gradient layouts ``variant`` can run (a peer: its framework's own)."""
    if variant in PEERS:
        return PEERS[variant].layouts
    return MODEL_VARIANTS[variant].layouts if variant in MODEL_VARIANTS else ()


def check_known(kind: str, values: list[str] | tuple[str, ...] | None) -> None:
    """``ValueError`` when ``values`` hold a name that is not a known ``kind`` (``variants``,
    ``kernels``, ``dtypes``, ``precisions``, ``grad-layouts``, ``compile-options``), naming the bad ones and the
    known ones."""
    known = {
        "variants": ALL_VARIANTS,
        "kernels": ALL_KERNELS,
        "dtypes": DTYPES,
        "precisions": PRECISIONS,
        "grad-layouts": LAYOUTS,
        "compile-options": tuple(COMPILE_OPTIONS),
    }[kind]
    bad = [v for v in values or () if v not in known]
    if bad:
        flag = {"precisions": "precision", "grad-layouts": "grad-layout"}.get(kind, kind)
        raise ValueError(f"--{flag} {','.join(bad)}: unknown; pick from {', '.join(known)}")
