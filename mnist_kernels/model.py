"""The model, written once: an MLP with tanh hidden layers and a log-softmax output.

This is the classic "MNIST classifier from scratch" of JAX's examples: parameters are a
list of ``(w, b)`` pairs, ``w`` shaped ``(fan_in, fan_out)`` and ``b`` shaped ``(fan_out,)``.
Every kernel variant in :mod:`mnist_kernels.variants` wraps these functions; none copies the
math.

Shapes: ``inputs`` is ``(B, 784)`` (or ``(784,)`` for one example), ``targets`` is one-hot
``(B, 10)`` float or integer class labels ``(B,)``; log-probabilities are ``(B, 10)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .catalog import DTYPES as DTYPES
from .catalog import IMAGE_PIXELS as IMAGE_PIXELS
from .catalog import NUM_CLASSES as NUM_CLASSES
from .catalog import flops_forward as flops_forward
from .catalog import flops_update as flops_update
from .matmul import Compute, matmul

Array: TypeAlias = jax.Array | np.ndarray
Params: TypeAlias = list[tuple[Array, Array]]
Batch: TypeAlias = tuple[Array, Array]


def init_params(
    layer_sizes: Sequence[int], scale: float = 0.1, seed: int = 0, dtype: str = "float32"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random parameters exactly as the notebook draws them.

    ``[(scale * rng.randn(m, n), scale * rng.randn(n)) for m, n in zip(sizes[:-1], sizes[1:])]``
    with ``rng = numpy.random.RandomState(seed)``, cast to ``dtype``.

    Args:
      layer_sizes: widths from input to output, e.g. ``[784, 1024, 1024, 10]``.
      scale: standard deviation of the normal draws.
      seed: seed of the ``RandomState``.
      dtype: NumPy dtype name of the returned arrays.

    Returns:
      A list of ``(w, b)`` NumPy arrays, ``w`` shaped ``(m, n)`` and ``b`` shaped ``(n,)``.
    """
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(
            f"layer_sizes {list(layer_sizes)} needs at least two positive widths, "
            "for example [784, 10] or [784, 1024, 1024, 10]"
        )
    rng = np.random.RandomState(seed)
    np_dtype = jnp.dtype(dtype)
    return [
        ((scale * rng.randn(m, n)).astype(np_dtype), (scale * rng.randn(n)).astype(np_dtype))
        for m, n in itertools.pairwise(sizes)
    ]


def layer_sizes_of(params: Params) -> list[int]:
    """The ``layer_sizes`` that ``params`` were built from."""
    return [int(params[0][0].shape[0])] + [int(w.shape[1]) for w, _ in params]


def _affine(x: Array, w: Array, b: Array, compute: Compute | None) -> jax.Array:
    out = matmul(x, w, compute)
    # explicit broadcast of the bias over the batch axes (tests run with rank promotion off)
    return out + jnp.reshape(b, (1,) * (out.ndim - 1) + b.shape)


def predict(params: Params, inputs: Array, compute: Compute | None = None) -> jax.Array:
    """Log-probabilities ``(B, 10)`` (or ``(10,)`` for one example).

    Hidden layers are ``tanh(x @ w + b)``; the last layer is affine, then log-softmax
    ``z - logsumexp(z)``. ``compute`` says how the matmuls compute (dtype, precision,
    gradient layout: :class:`mnist_kernels.matmul.Compute`; default float32, highest, tuned).
    """
    activations = inputs
    for w, b in params[:-1]:
        activations = jnp.tanh(_affine(activations, w, b, compute))
    final_w, final_b = params[-1]
    logits = _affine(activations, final_w, final_b, compute)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def loss(params: Params, batch: Batch, compute: Compute | None = None) -> jax.Array:
    """Mean negative log-likelihood of the targets.

    ``targets`` may be one-hot ``(B, 10)`` (the notebook's form) or integer labels ``(B,)``:
    the value is the same, the integer form gathers instead of multiplying.
    """
    inputs, targets = batch
    preds = predict(params, inputs, compute)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        picked = jnp.take_along_axis(preds, targets[..., None], axis=-1)[..., 0]
        return -jnp.mean(picked)
    return -jnp.mean(jnp.sum(preds * targets, axis=-1))


def accuracy(params: Params, batch: Batch, compute: Compute | None = None) -> jax.Array:
    """Fraction of examples whose argmax prediction matches the target class."""
    inputs, targets = batch
    target_class = (
        targets if jnp.issubdtype(targets.dtype, jnp.integer) else jnp.argmax(targets, axis=-1)
    )
    predicted_class = jnp.argmax(predict(params, inputs, compute), axis=-1)
    return jnp.mean(predicted_class == target_class)


def sgd(params: Params, grads: Params, lr: float) -> Params:
    """Plain SGD: ``w - lr * dw`` for every leaf."""
    return [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads, strict=True)]


def update(
    params: Params, batch: Batch, lr: float = 0.001, compute: Compute | None = None
) -> Params:
    """One SGD step on ``batch``; returns the new parameters."""
    grads = jax.grad(loss)(params, batch, compute)
    return sgd(params, grads, lr)
