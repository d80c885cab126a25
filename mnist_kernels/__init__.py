"""mnist_kernels: the from-scratch MNIST MLP in JAX, and the kernel variants that get timed.

The model's functions (``predict``, ``loss``, ``update``...) are imported from
:mod:`mnist_kernels.model` when first used, so that ``mnist_kernels.catalog`` (what the variants
are, no JAX) can be read by a process that never imports JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import DTYPES as DTYPES
from .catalog import IMAGE_PIXELS as IMAGE_PIXELS
from .catalog import NUM_CLASSES as NUM_CLASSES
from .catalog import flops_forward as flops_forward
from .catalog import flops_update as flops_update

__version__ = "0.1.0"

#: names served by :mod:`mnist_kernels.model`, imported (with JAX) on first use.
_MODEL_NAMES = (
    "accuracy",
    "init_params",
    "layer_sizes_of",
    "loss",
    "predict",
    "sgd",
    "update",
)
__all__ = [
    "DTYPES",
    "IMAGE_PIXELS",
    "NUM_CLASSES",
    "flops_forward",
    "flops_update",
    *_MODEL_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        return getattr(importlib.import_module(".model", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
