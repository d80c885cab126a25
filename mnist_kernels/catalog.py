"""What the model and its kernel variants are, without building them: the variants' names,
properties and options, the dtypes, layer sizes and what a step costs in FLOPs.

This module imports neither JAX nor NumPy, so a process that only plans or reports (the
benchmark's parent process, a report on a laptop without JAX) can read it. The variants
themselves are built by :mod:`mnist_kernels.variants`, which registers one builder per name
listed here and refuses a name that is not.

Each :class:`Variant` says whether one step spreads over several devices, which kernels it has
(``update``: one SGD step; ``predict``; ``epoch``: a whole training epoch), whether one call
makes several SGD steps, and which options it takes, with their defaults and limits.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

IMAGE_PIXELS = 784
NUM_CLASSES = 10

#: the JAX releases this project supports, (major, minor): the oldest and the first it does not
SUPPORTED_JAX = ((0, 10), (0, 13))


def jax_release(version: str) -> tuple[int, int, int]:
    """A JAX version string (``"0.12.0.1"``, ``"0.11.0rc1"``) as ``(major, minor, patch)``."""
    parts = []
    for part in version.split(".")[:3]:
        digits = ""
        for c in part:
            if not c.isdigit():
                break
            digits += c
        parts.append(int(digits) if digits else 0)
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return major, minor, patch


def jax_supported(version: str) -> bool:
    """Whether JAX ``version`` is one this project supports."""
    low, high = SUPPORTED_JAX
    return low <= jax_release(version)[:2] < high


#: dtypes a kernel may compute in. ``bfloat16`` keeps parameters in float32 and runs every
#: matmul, forward and backward, on bfloat16 operands with float32 accumulation.
DTYPES = ("float32", "bfloat16")
#: the precision of float32 matmuls (see :mod:`mnist_kernels.matmul`).
PRECISIONS = ("highest", "tf32", "default")
#: the layout of the backward pass's dots: ``tuned`` (a thin layer's weight gradient as
#: ``(dz.T @ x).T``), ``stock`` (``jax.grad``'s) or ``packed`` (tuned, and every backward dot's
#: transposed operand written out transposed first, so each is an ``[M, K] @ [K, N]`` dot,
#: the one form XLA:CPU runs on bfloat16 operands; see :mod:`mnist_kernels.matmul`).
LAYOUTS = ("tuned", "stock", "packed")
#: the layouts a multi-device variant runs (``packed`` is measured on one device).
SHARDED_LAYOUTS = ("tuned", "stock")

#: what can be measured of a variant: one SGD step, a forward pass, a whole training epoch.
UPDATE, PREDICT, EPOCH = "update", "predict", "epoch"


@dataclasses.dataclass(frozen=True)
class Option:
    """A variant setting: ``name`` (as a keyword of :func:`mnist_kernels.variants.get`), its
    default (``None``: chosen from the devices, see the variant) and smallest allowed value."""

    name: str
    default: int | None
    minimum: int = 1
    help: str = ""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of running the model.

    Attributes:
      name: the registry name.
      summary: one line on what it does.
      multi_device: one step spreads over several devices (data or model parallel).
      kernels: the kernels it has (``scan``'s predict is ``jit``'s: it has none of its own).
      options: the settings it takes.
      steps_option: the option holding the SGD steps one ``update`` call makes, if any.
      members_option: the option holding the independent models one call trains, if any.
      layouts: the weight-gradient layouts it can run (``notebook`` is stock by definition).
    """

    name: str
    summary: str
    multi_device: bool = False
    kernels: tuple[str, ...] = (UPDATE, PREDICT)
    options: tuple[Option, ...] = ()
    steps_option: str | None = None
    members_option: str | None = None
    layouts: tuple[str, ...] = LAYOUTS

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        known = ", ".join(o.name for o in self.options) or "none"
        raise ValueError(f"variant {self.name!r} has no option {name!r} (its options: {known})")

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` checked against this variant's: unknown names and values below an
        option's minimum raise ``ValueError`` saying which."""
        out = {}
        for name, value in options.items():
            opt = self.option(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < opt.minimum:
                raise ValueError(
                    f"{self.name} option {name}={value!r}: give a whole number, at least "
                    f"{opt.minimum}"
                )
            out[name] = value
        return out


STEPS = Option("steps", 8, help="SGD steps fused into one call")
MEMBERS = Option("members", 4, help="independent models trained per call")
MODEL_PARALLEL = Option(
    "model_parallel", None, help="devices each layer is split over (default 2 on an even count)"
)

#: every JAX variant, in registration order.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "notebook",
            "the seed notebook's step: jax.jit, stock jax.grad, a host batch at every call",
            kernels=(UPDATE, PREDICT, EPOCH),
            layouts=("stock",),
        ),
        Variant("jit", "jax.jit of the SGD step on one device", kernels=(UPDATE, PREDICT, EPOCH)),
        Variant("vmap", "per-example gradients by jax.vmap, averaged, on one device"),
        Variant(
            "pmap",
            "data parallel: jax.pmap with a pmean of the gradients",
            True,
            layouts=SHARDED_LAYOUTS,
        ),
        Variant(
            "sharded",
            "data parallel: the batch sharded over a mesh under jax.jit",
            True,
            layouts=SHARDED_LAYOUTS,
        ),
        Variant(
            "shard_map",
            "data parallel: jax.shard_map with a pmean of the loss",
            True,
            layouts=SHARDED_LAYOUTS,
        ),
        Variant(
            "scan",
            "several SGD steps fused into one call by lax.scan",
            kernels=(UPDATE, EPOCH),
            options=(STEPS,),
            steps_option="steps",
        ),
        Variant(
            "sharded_tp",
            "tensor parallel: layers split over a 'model' mesh axis, batch over 'batch'",
            True,
            options=(MODEL_PARALLEL,),
            layouts=SHARDED_LAYOUTS,
        ),
        Variant(
            "ensemble",
            "several independent models trained in one call by jax.vmap",
            options=(MEMBERS,),
            members_option="members",
        ),
    )
}


def variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``; ``ValueError`` listing the known names if none."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known variants: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def is_multi_device(name: str) -> bool:
    """Whether a variant spreads one step over several devices."""
    return name in VARIANTS and VARIANTS[name].multi_device


def model_parallel(n_devices: int, model_parallel: int | None = None) -> int:
    """Devices each layer of ``sharded_tp`` is split over: the given value, else 2 on an even
    device count and 1 on an odd one."""
    if model_parallel is not None:
        return int(model_parallel)
    return 2 if n_devices % 2 == 0 else 1


def data_parallel_groups(name: str, n_devices: int, options: Mapping[str, Any] = ()) -> int:
    """How many slices the batch is split into over ``n_devices``: every device for the data
    parallel variants, ``n / model_parallel`` for ``sharded_tp``, 1 on one device."""
    if not is_multi_device(name):
        return 1
    if name == "sharded_tp":
        return n_devices // model_parallel(n_devices, dict(options).get("model_parallel"))
    return n_devices


def parse_layers(text: str | Iterable[int]) -> tuple[int, ...]:
    """``"784,1024,10"`` (or a sequence of ints) -> ``(784, 1024, 10)``, checked: the input is
    the image's pixels, the output the classes, every width positive."""
    if isinstance(text, str):
        try:
            sizes = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
        except ValueError:
            raise ValueError(
                f"layer sizes {text!r}: write integers separated by commas, like 784,1024,1024,10"
            ) from None
    else:
        sizes = tuple(int(s) for s in text)
    if len(sizes) < 2 or sizes[0] != IMAGE_PIXELS or sizes[-1] != NUM_CLASSES or min(sizes) < 1:
        raise ValueError(
            f"layer sizes {sizes}: must start with {IMAGE_PIXELS} (28x28 pixels), end with "
            f"{NUM_CLASSES} (classes) and have positive widths, like 784,1024,1024,10"
        )
    return sizes


def n_params(layer_sizes: Iterable[int]) -> int:
    """Weights and biases of an MLP with these widths."""
    return sum(m * n + n for m, n in itertools.pairwise(list(layer_sizes)))


def flops_forward(layer_sizes: Iterable[int], batch_size: int) -> int:
    """Matmul FLOPs of one forward pass: ``2 * B * sum(m * n)``."""
    sizes = list(layer_sizes)
    return 2 * batch_size * sum(m * n for m, n in itertools.pairwise(sizes))


def flops_update(layer_sizes: Iterable[int], batch_size: int) -> int:
    """Matmul FLOPs of one SGD step: forward, plus the backward pass.

    The backward pass computes the weight gradient of every layer (``2 * B * m * n``) and the
    input gradient of every layer but the first (the data needs none): ``3x`` the forward
    cost minus the first layer's input gradient.
    """
    sizes = list(layer_sizes)
    fwd = flops_forward(sizes, batch_size)
    first = 2 * batch_size * sizes[0] * sizes[1]
    return 3 * fwd - first
