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
from jax.sharding import PartitionSpec

from .catalog import DTYPES as DTYPES
from .catalog import IMAGE_PIXELS as IMAGE_PIXELS
from .catalog import NUM_CLASSES as NUM_CLASSES
from .catalog import flops_forward as flops_forward
from .catalog import flops_update as flops_update

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


#: fan-out at or below which a layer's weight gradient is computed as ``(dz.T @ x).T``.
THIN_OUTPUT = 64


@jax.custom_vjp
def _thin_dot(x: Array, w: Array) -> jax.Array:
    """``x @ w`` for a thin ``w`` (few output units), with a faster weight-gradient layout.

    The gradient ``jax.grad`` derives for ``w`` is ``x.T @ dz``: a dot contracting the batch
    axis of both operands into a ``(fan_in, fan_out)`` result. For a thin output XLA:CPU runs
    that layout about 2-3x slower than the same product written ``dz.T @ x`` (measured at
    batch 4096, ``[784, 10]``: 1.98 ms against 0.65 ms). The backward rule below computes
    ``dz.T @ x`` and transposes the small result; the optimization barrier keeps XLA's
    simplifier from folding the transpose back into the dot. The values are the same products
    and sums as ``jax.grad``'s.
    """
    return jnp.dot(x, w)


def _thin_dot_fwd(x: Array, w: Array):
    return jnp.dot(x, w), (x, w)


def _thin_dot_bwd(res, g):
    x, w = res
    dx = jnp.dot(g, w.T)
    x2 = jnp.reshape(x, (-1, x.shape[-1]))
    g2 = jnp.reshape(g, (-1, g.shape[-1]))
    # under an explicit mesh the batch axis being contracted may be sharded: say that the
    # result is placed like ``w`` (transposed), as jax.grad's own transpose rule does
    sharding = jax.typeof(w).sharding
    out_sharding = None
    if not sharding.mesh.empty:
        spec = (*sharding.spec, None, None)[:2]
        out_sharding = sharding.update(spec=PartitionSpec(spec[1], spec[0]))
    dw_t = jax.lax.optimization_barrier(jnp.dot(g2.T, x2, out_sharding=out_sharding))
    return _sum_over_extra_axes(dx, x), _sum_over_extra_axes(dw_t.T, w)


def _sum_over_extra_axes(cotangent: jax.Array, primal: Array) -> jax.Array:
    """Inside ``shard_map``: sum a cotangent over the mesh axes it varies along and its primal
    does not (a replicated ``w`` gets the gradient summed over the batch shards), which is what
    ``jax.grad``'s own rule for a replicated operand does."""
    extra = tuple(sorted(_varying_axes(cotangent) - _varying_axes(primal)))
    return jax.lax.psum(cotangent, extra) if extra else cotangent


def _varying_axes(x: Array) -> frozenset[str]:
    """Mesh axes along which ``x`` varies inside ``shard_map`` (empty outside)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # JAX 0.10
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", ()))  # other JAX versions


_thin_dot.defvjp(_thin_dot_fwd, _thin_dot_bwd)


def compute_dtype(dtype: str) -> str | None:
    """The ``compute_dtype`` argument of the functions below for a kernel's ``dtype``: None
    (the parameters' own) for float32, else the dtype's name."""
    return None if dtype == "float32" else dtype


def _affine(x: Array, w: Array, b: Array, compute_dtype: str | None) -> jax.Array:
    if compute_dtype is None or jnp.dtype(compute_dtype) == jnp.dtype(w.dtype):
        out = _thin_dot(x, w) if w.shape[-1] <= THIN_OUTPUT else jnp.dot(x, w)
    else:
        cd = jnp.dtype(compute_dtype)
        out = jnp.dot(x.astype(cd), w.astype(cd), preferred_element_type=w.dtype)
    # explicit broadcast of the bias over the batch axes (tests run with rank promotion off)
    return out + jnp.reshape(b, (1,) * (out.ndim - 1) + b.shape)


def predict(params: Params, inputs: Array, compute_dtype: str | None = None) -> jax.Array:
    """Log-probabilities ``(B, 10)`` (or ``(10,)`` for one example).

    Hidden layers are ``tanh(x @ w + b)``; the last layer is affine, then log-softmax
    ``z - logsumexp(z)``. With ``compute_dtype="bfloat16"`` the matmuls take bfloat16
    operands and accumulate in the parameters' dtype.
    """
    activations = inputs
    for w, b in params[:-1]:
        activations = jnp.tanh(_affine(activations, w, b, compute_dtype))
    final_w, final_b = params[-1]
    logits = _affine(activations, final_w, final_b, compute_dtype)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def loss(params: Params, batch: Batch, compute_dtype: str | None = None) -> jax.Array:
    """Mean negative log-likelihood of the targets.

    ``targets`` may be one-hot ``(B, 10)`` (the notebook's form) or integer labels ``(B,)``:
    the value is the same, the integer form gathers instead of multiplying.
    """
    inputs, targets = batch
    preds = predict(params, inputs, compute_dtype)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        picked = jnp.take_along_axis(preds, targets[..., None], axis=-1)[..., 0]
        return -jnp.mean(picked)
    return -jnp.mean(jnp.sum(preds * targets, axis=-1))


def accuracy(params: Params, batch: Batch, compute_dtype: str | None = None) -> jax.Array:
    """Fraction of examples whose argmax prediction matches the target class."""
    inputs, targets = batch
    target_class = (
        targets if jnp.issubdtype(targets.dtype, jnp.integer) else jnp.argmax(targets, axis=-1)
    )
    predicted_class = jnp.argmax(predict(params, inputs, compute_dtype), axis=-1)
    return jnp.mean(predicted_class == target_class)


def sgd(params: Params, grads: Params, lr: float) -> Params:
    """Plain SGD: ``w - lr * dw`` for every leaf."""
    return [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads, strict=True)]


def update(
    params: Params, batch: Batch, lr: float = 0.001, compute_dtype: str | None = None
) -> Params:
    """One SGD step on ``batch``; returns the new parameters."""
    grads = jax.grad(loss)(params, batch, compute_dtype)
    return sgd(params, grads, lr)
