"""A whole training epoch in one compiled call, in the notebook's data order: one
``RandomState(seed)`` permutation per epoch, consecutive ``batch_size`` slices of it, the last
one short. The training set stays on the device (best as stored: uint8, converted to the
model's float32 inside the step); ``lax.scan`` fuses the steps."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import data, model
from .matmul import Compute
from .model import Params


def epoch_permutations(num_train: int, epochs: int, seed: int = 0) -> list[np.ndarray]:
    """The notebook's data order: one ``RandomState(seed)`` permutation per epoch."""
    rng = np.random.RandomState(seed)
    return [rng.permutation(num_train) for _ in range(epochs)]


def _batch(images: jax.Array, labels: jax.Array, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The examples ``idx`` as the model takes them, gathered from the resident set.

    Stored uint8 pixels become float32 here (:func:`~mnist_kernels.data.pixels_to_float`, the
    conversion :func:`~mnist_kernels.data.load_dataset` does), class labels one-hot rows: the
    step sees exactly the arrays the notebook's loop feeds it.
    """
    x = jnp.take(images, idx, axis=0, mode="clip")
    y = jnp.take(labels, idx, axis=0, mode="clip")
    if jnp.issubdtype(x.dtype, jnp.integer):
        x = data.pixels_to_float(x)
    if y.ndim == 1:
        y = jax.nn.one_hot(y, model.NUM_CLASSES, dtype=jnp.float32)
    return x, y


@functools.lru_cache(maxsize=32)
def epoch_fn(
    batch_size: int,
    lr: float,
    compute: Compute,
    compiler_options: tuple[tuple[str, Any], ...] = (),
) -> Callable[..., Params]:
    """The jitted whole-epoch function (cached per batch size, rate, arithmetic and XLA compile
    options, ``jax.jit``'s ``compiler_options`` as sorted pairs): params, the device-resident
    images and labels and the permutation in, the new params out."""

    def run(params: Params, images: jax.Array, labels: jax.Array, perm: jax.Array) -> Params:
        num_train = perm.shape[0]
        full, leftover = divmod(num_train, batch_size)

        def body(p: Params, i: jax.Array) -> tuple[Params, None]:
            idx = lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
            return model.update(p, _batch(images, labels, idx), lr, compute), None

        params = lax.scan(body, params, jnp.arange(full))[0]
        if leftover:
            idx = perm[full * batch_size :]
            params = model.update(params, _batch(images, labels, idx), lr, compute)
        return params

    return jax.jit(run, donate_argnums=0, compiler_options=dict(compiler_options) or None)


def train_epoch(
    params: Any,
    images: jax.Array,
    labels: jax.Array,
    perm: np.ndarray | jax.Array,
    *,
    batch_size: int = 128,
    lr: float = 0.001,
    compute: Compute | None = None,
) -> Any:
    """One whole epoch in one compiled call, in the notebook's order.

    ``images`` and ``labels`` stay on the device, in either form: as stored (uint8 pixels
    ``(N, 784)`` and uint8 classes ``(N,)``, :func:`~mnist_kernels.data.stored_form`; a quarter
    of the bytes, converted inside the fused step) or as :func:`~mnist_kernels.data.load_dataset`
    gives them (float32 ``(N, 784)`` and one-hot ``(N, 10)``); same result. ``perm`` is the
    epoch's permutation (see :func:`epoch_permutations`). Consecutive ``batch_size`` slices of
    the permuted data are SGD steps fused by ``lax.scan``; the last, short batch is one more
    step. ``params`` are donated. Returns the new params.
    """
    if batch_size < 1 or batch_size > np.shape(perm)[0]:
        raise ValueError(
            f"batch_size {batch_size} must be between 1 and the training set size {np.shape(perm)[0]}"
        )
    fn = epoch_fn(int(batch_size), float(lr), compute or Compute())
    return fn(params, images, labels, jnp.asarray(perm, dtype=jnp.int32))
