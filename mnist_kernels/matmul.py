"""How a layer's ``x @ w`` is computed: the operands' dtype, the precision of float32 matmuls and
the layout of the weight gradient, in one :class:`Compute` that the model's functions take.

- ``dtype="float32"``: float32 operands at ``precision`` (``highest``: full float32 on every
  backend; ``tf32``: TensorFloat-32 on NVIDIA GPUs; ``default``: whatever the backend does by
  default, TF32 on NVIDIA GPUs and one bfloat16 pass on TPUs).
- ``dtype="bfloat16"``: mixed precision, as PyTorch's autocast does it: every matmul of the
  forward and the backward pass takes bfloat16 operands, accumulates in float32 and rounds its
  output to bfloat16 (as ``torch.matmul`` on bfloat16 tensors does); parameters, biases,
  activations and the SGD update stay float32. The backward rule is written out (a custom VJP):
  differentiating the forward would give the backward dots a float32 cotangent operand.
- ``layout``: ``stock`` is the gradient ``jax.grad`` derives, ``x.T @ dz``; ``tuned`` computes a
  thin layer's (at most :data:`THIN_OUTPUT` outputs) weight gradient as ``(dz.T @ x).T``, which
  XLA:CPU runs 2-3x faster for a thin output; ``packed`` is ``tuned`` with every backward dot's
  transposed operand (``w.T`` for the input gradient, ``x.T`` or ``dz.T`` for the weight
  gradient) written out transposed first, so every dot of the step is ``[M, K] @ [K, N]``:
  XLA:CPU runs a bfloat16 dot on bfloat16 operands only in that form (it widens the others to
  float32: 2-3x slower). Same products and sums, same values, in every layout.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec

from .catalog import DTYPES, LAYOUTS, PRECISIONS

#: fan-out at or below which the tuned layout computes a weight gradient as ``(dz.T @ x).T``.
THIN_OUTPUT = 64


@dataclasses.dataclass(frozen=True)
class Compute:
    """How every matmul of the model computes (see the module docstring).

    Attributes:
      dtype: the matmul operands' dtype, ``float32`` or ``bfloat16``.
      precision: the precision of float32 matmuls, ``highest``, ``tf32`` or ``default``
        (a bfloat16 matmul has one arithmetic: the field is ignored).
      layout: the weight gradient's layout, ``tuned`` or ``stock``.
    """

    dtype: str = "float32"
    precision: str = "highest"
    layout: str = "tuned"

    def __post_init__(self) -> None:
        for name, value, known in (
            ("dtype", self.dtype, DTYPES),
            ("precision", self.precision, PRECISIONS),
            ("layout", self.layout, LAYOUTS),
        ):
            if value not in known:
                raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(known)}")


STOCK = Compute(layout="stock")


def _precision(name: str) -> Any:
    if name == "highest":
        return lax.Precision.HIGHEST
    if name == "tf32":
        return lax.DotAlgorithmPreset.TF32_TF32_F32
    return lax.Precision.DEFAULT


def matmul(x: jax.Array, w: jax.Array, compute: Compute | None = None) -> jax.Array:
    """``x @ w`` in ``x``'s dtype, computed as ``compute`` says (see the module docstring)."""
    c = compute or Compute()
    thin = c.layout != "stock" and w.shape[-1] <= THIN_OUTPUT
    packed = c.layout == "packed"
    if c.dtype == "float32":
        precision = _precision(c.precision)
        if packed:
            return _packed_dot(x, w, precision, thin)
        return _thin_dot(x, w, precision) if thin else jnp.dot(x, w, precision=precision)
    return _low_dot(x, w, jnp.dtype(c.dtype), thin, packed, x.dtype, w.dtype)


def transposed(a: jax.Array) -> jax.Array:
    """``a.T`` written out in memory (row-major), not a relabelled view of ``a``.

    XLA folds a plain transpose into the dot that reads it (as a transposed operand) or into the
    operand's layout; the barriers and the flattening keep it a copy, so the dot after it is
    ``[M, K] @ [K, N]``.
    """
    rows, cols = a.shape
    flat = lax.optimization_barrier(lax.optimization_barrier(a).T.reshape(-1))
    return flat.reshape(cols, rows)


# --- float32, tuned: the thin layer's weight gradient ---------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _thin_dot(x: jax.Array, w: jax.Array, precision: Any) -> jax.Array:
    """``x @ w`` for a thin ``w`` whose weight gradient is ``(dz.T @ x).T``.

    The gradient ``jax.grad`` derives for ``w`` is ``x.T @ dz``: a dot contracting the batch
    axis of both operands into a ``(fan_in, fan_out)`` result. For a thin output XLA:CPU runs
    that layout about 2-3x slower than the same product written ``dz.T @ x`` (measured at
    batch 4096, ``[784, 10]``: 1.98 ms against 0.65 ms). The optimization barrier keeps XLA's
    simplifier from folding the transpose back into the dot.
    """
    return jnp.dot(x, w, precision=precision)


def _thin_dot_fwd(x: jax.Array, w: jax.Array, precision: Any):
    return jnp.dot(x, w, precision=precision), (x, w)


def _thin_dot_bwd(precision: Any, res: tuple, g: jax.Array):
    x, w = res
    dx = jnp.dot(g, w.T, precision=precision)
    dw = _weight_grad(x, g, w, thin=True, precision=precision, out=None)
    return _sum_over_extra_axes(dx, x), _sum_over_extra_axes(dw, w)


_thin_dot.defvjp(_thin_dot_fwd, _thin_dot_bwd)


# --- float32, packed: every backward dot [M, K] @ [K, N] ----------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _packed_dot(x: jax.Array, w: jax.Array, precision: Any, thin: bool) -> jax.Array:
    """``x @ w`` whose backward dots take written-out transposes (the ``packed`` layout)."""
    return jnp.dot(x, w, precision=precision)


def _packed_dot_fwd(x: jax.Array, w: jax.Array, precision: Any, thin: bool):
    return jnp.dot(x, w, precision=precision), (x, w)


def _packed_dot_bwd(precision: Any, thin: bool, res: tuple, g: jax.Array):
    x, w = res
    dx = jnp.dot(g, transposed(w), precision=precision)
    dw = _weight_grad(x, g, w, thin=thin, precision=precision, out=None, packed=True)
    return dx, dw


_packed_dot.defvjp(_packed_dot_fwd, _packed_dot_bwd)


# --- bfloat16 -------------------------------------------------------------------------------


def _rounded(a: jax.Array, low: Any, like: Any) -> jax.Array:
    """A float32 result rounded to ``low`` (what a ``low`` matmul stores), back in ``like``."""
    return a.astype(low).astype(like)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _low_dot(
    x: jax.Array, w: jax.Array, low: Any, thin: bool, packed: bool, x_dtype: Any, w_dtype: Any
):
    """``x @ w`` with ``low`` (bfloat16) operands, float32 accumulation and a ``low`` output
    (given back in ``x_dtype``), the backward dots alike (``packed``: on written-out
    transposes)."""
    return _low_dot_fwd(x, w, low, thin, packed, x_dtype, w_dtype)[0]


def _low_dot_fwd(
    x: jax.Array, w: jax.Array, low: Any, thin: bool, packed: bool, x_dtype: Any, w_dtype: Any
):
    xl, wl = x.astype(low), w.astype(low)
    out = jnp.dot(xl, wl, preferred_element_type=jnp.float32)
    return _rounded(out, low, x_dtype), (xl, wl)


def _low_dot_bwd(
    low: Any, thin: bool, packed: bool, x_dtype: Any, w_dtype: Any, res: tuple, g: jax.Array
):
    xl, wl = res
    gl = g.astype(low)
    wt = transposed(wl) if packed else wl.T
    dx = _rounded(jnp.dot(gl, wt, preferred_element_type=jnp.float32), low, x_dtype)
    dw = _weight_grad(xl, gl, wl, thin=thin, precision=None, out=jnp.float32, packed=packed)
    return _sum_over_extra_axes(dx, xl), _sum_over_extra_axes(_rounded(dw, low, w_dtype), wl)


_low_dot.defvjp(_low_dot_fwd, _low_dot_bwd)


# --- shared by both backward rules ------------------------------------------------------------


def _weight_grad(
    x: jax.Array,
    g: jax.Array,
    w: jax.Array,
    *,
    thin: bool,
    precision: Any,
    out: Any,
    packed: bool = False,
) -> jax.Array:
    """``x.T @ g`` over every batch axis, placed like ``w``; for ``thin``, as ``(g.T @ x).T``;
    ``packed``: the transposed operand written out (:func:`transposed`). ``packed`` runs on one
    device (no mesh)."""
    x2 = jnp.reshape(x, (-1, x.shape[-1]))
    g2 = jnp.reshape(g, (-1, g.shape[-1]))
    # under an explicit mesh the batch axis being contracted may be sharded: say that the
    # result is placed like ``w``, as jax.grad's own transpose rule does
    sharding = jax.typeof(w).sharding
    placed = None if sharding.mesh.empty else (*sharding.spec, None, None)[:2]
    kw = {"precision": precision, "preferred_element_type": out}
    if packed:
        if thin:
            return lax.optimization_barrier(jnp.dot(transposed(g2), x2, **kw)).T
        return jnp.dot(transposed(x2), g2, **kw)
    if not thin:
        spec = None if placed is None else sharding.update(spec=PartitionSpec(*placed))
        return jnp.dot(x2.T, g2, out_sharding=spec, **kw)
    spec = None if placed is None else sharding.update(spec=PartitionSpec(placed[1], placed[0]))
    return lax.optimization_barrier(jnp.dot(g2.T, x2, out_sharding=spec, **kw)).T


def _sum_over_extra_axes(cotangent: jax.Array, primal: jax.Array) -> jax.Array:
    """Inside ``shard_map``: sum a cotangent over the mesh axes it varies along and its primal
    does not (a replicated ``w`` gets the gradient summed over the batch shards), which is what
    ``jax.grad``'s own rule for a replicated operand does."""
    extra = tuple(sorted(_varying_axes(cotangent) - _varying_axes(primal)))
    return lax.psum(cotangent, extra) if extra else cotangent


def _varying_axes(x: jax.Array) -> frozenset[str]:
    """Mesh axes along which ``x`` varies inside ``shard_map`` (empty outside)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # JAX 0.10
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", ()))  # other JAX versions
