"""How a layer's matmul computes: the tuned gradient layout gives stock's values; bfloat16 does
PyTorch's mixed-precision arithmetic (bfloat16 operands, float32 accumulation, outputs rounded
to bfloat16) in the forward and the backward pass; precision and layout are checked."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_kernels.matmul import Compute, matmul

TUNED, STOCK, PACKED = Compute(), Compute(layout="stock"), Compute(layout="packed")
BF16, BF16_STOCK = Compute("bfloat16"), Compute("bfloat16", layout="stock")
BF16_PACKED = Compute("bfloat16", layout="packed")


def data(x_shape, fan_out=10, seed=1):
    rng = np.random.RandomState(seed)
    x = rng.randn(*x_shape).astype(np.float32)
    w = rng.randn(x_shape[-1], fan_out).astype(np.float32)
    g = rng.randn(*x_shape[:-1], fan_out).astype(np.float32)
    return x, w, g


@pytest.mark.parametrize("compute", [TUNED, PACKED], ids=["tuned", "packed"])
@pytest.mark.parametrize("fan_out", [10, 256])
@pytest.mark.parametrize("x_shape", [(64, 784), (784,), (3, 5, 784)])
def test_the_tuned_and_packed_gradients_equal_jax_grads(x_shape, fan_out, compute):
    x, w, g = data(x_shape, fan_out)
    out, vjp = jax.vjp(lambda a, b: matmul(a, b, compute), x, w)
    ref_out, ref_vjp = jax.vjp(lambda a, b: jnp.dot(a, b, precision="highest"), x, w)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-4)
    for got, want in zip(vjp(g), ref_vjp(g), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("compute", [TUNED, PACKED], ids=["tuned", "packed"])
def test_the_thin_layer_per_example_gradients_under_vmap(compute):
    x, w, _ = data((8, 784), seed=2)

    def per_example(compute):
        f = lambda w, xi: jnp.sum(jnp.tanh(matmul(xi, w, compute)))  # noqa: E731
        return jax.vmap(jax.grad(f), (None, 0))(w, x)

    got, want = per_example(compute), per_example(STOCK)
    assert got.shape == (8, 784, 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def bf16(a):
    return jnp.asarray(a).astype(jnp.bfloat16)


def torch_like(x, w, g):
    """What PyTorch computes for ``(x.bfloat16() @ w.bfloat16()).float()`` and its backward:
    every product of bfloat16 operands accumulated in float32, the result rounded to bfloat16."""

    def mm(a, b):
        return jnp.dot(bf16(a), bf16(b), preferred_element_type=jnp.float32).astype(jnp.bfloat16)

    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    out = mm(x, w).astype(jnp.float32)
    dx = mm(g, w.T).astype(jnp.float32)
    dw = mm(x2.T, g2).astype(jnp.float32)
    return out, dx, dw


@pytest.mark.parametrize(
    "compute", [BF16, BF16_STOCK, BF16_PACKED], ids=["tuned", "stock", "packed"]
)
@pytest.mark.parametrize("fan_out", [10, 256])
def test_bfloat16_is_torchs_mixed_precision_forward_and_backward(compute, fan_out):
    x, w, g = data((32, 784), fan_out)
    out, vjp = jax.vjp(lambda a, b: matmul(a, b, compute), x, w)
    dx, dw = vjp(g)
    assert out.dtype == dx.dtype == dw.dtype == jnp.float32  # float32 in, float32 out
    want = torch_like(x, w, g)
    for got, ref in zip((out, dx, dw), want, strict=True):
        # the same products and sums: equal up to the order of the float32 accumulation,
        # then one bfloat16 rounding (relative 2**-8)
        np.testing.assert_allclose(got, ref, rtol=2**-7, atol=1e-3)
    # and not float32 arithmetic: every result is a bfloat16 value, the gradients too
    for got in (out, dx, dw):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(bf16(got).astype(jnp.float32)))
    f32 = np.asarray(jnp.dot(x, w, precision="highest"))
    assert np.abs(np.asarray(out) - f32).max() > 1e-3 * np.abs(f32).max()


def test_settings_are_checked():

    with pytest.raises(ValueError, match="unknown precision 'fast'"):
        Compute(precision="fast")
    with pytest.raises(ValueError, match="unknown layout"):
        Compute(layout="mine")
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        Compute("float16")
