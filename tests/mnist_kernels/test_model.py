"""The model against a NumPy reference with a hand-written backward pass."""

import jax
import numpy as np
import pytest

import mnist_kernels as mk
from tests.helpers import numpy_forward, numpy_update


def _batch(n=16, seed=1):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, n)]
    return x, y


def test_init_params_is_the_notebook_draw():
    params = mk.init_params([784, 32, 10])
    rng = np.random.RandomState(0)
    expect = [
        (0.1 * rng.randn(784, 32), 0.1 * rng.randn(32)),
        (0.1 * rng.randn(32, 10), 0.1 * rng.randn(10)),
    ]
    for (w, b), (ew, eb) in zip(params, expect, strict=True):
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, ew.astype(np.float32))
        np.testing.assert_array_equal(b, eb.astype(np.float32))


@pytest.mark.parametrize("sizes", [[784, 10], [784, 64, 32, 10]])
def test_predict_loss_update_match_numpy(sizes):
    params = mk.init_params(sizes)
    x, y = _batch()
    _, ref_logp = numpy_forward(params, x)
    np.testing.assert_allclose(mk.predict(params, x), ref_logp, atol=1e-5)
    np.testing.assert_allclose(mk.loss(params, (x, y)), -np.mean((ref_logp * y).sum(1)), rtol=1e-5)
    labels = y.argmax(1).astype(np.int32)
    np.testing.assert_allclose(mk.loss(params, (x, labels)), mk.loss(params, (x, y)), rtol=1e-6)
    new = mk.update(params, (x, y), lr=0.5)
    ref = numpy_update(params, x, y, 0.5)
    for (w, b), (rw, rb) in zip(new, ref, strict=True):
        np.testing.assert_allclose(w, rw, atol=1e-5)
        np.testing.assert_allclose(b, rb, atol=1e-5)


def test_gradient_matches_finite_differences():
    params = [(w.astype(np.float64), b.astype(np.float64)) for w, b in mk.init_params([784, 8, 10])]
    x, y = _batch(4)
    with jax.enable_x64(True):
        g = jax.grad(mk.loss)(params, (x.astype(np.float64), y.astype(np.float64)))
        eps = 1e-6
        for layer, idx in [(0, (3, 2)), (1, (5, 7))]:
            plus = [(w.copy(), b) for w, b in params]
            minus = [(w.copy(), b) for w, b in params]
            plus[layer][0][idx] += eps
            minus[layer][0][idx] -= eps
            fd = (mk.loss(plus, (x, y)) - mk.loss(minus, (x, y))) / (2 * eps)
            np.testing.assert_allclose(g[layer][0][idx], fd, rtol=1e-4, atol=1e-8)


def test_accuracy_and_flops():
    params = mk.init_params([784, 10])
    x, y = _batch()
    acc = float(mk.accuracy(params, (x, y)))
    assert acc == pytest.approx(np.mean(np.asarray(mk.predict(params, x)).argmax(1) == y.argmax(1)))
    assert mk.flops_forward([784, 10], 2) == 2 * 2 * 7840
    assert mk.flops_update([784, 100, 10], 1) == 3 * 2 * (78400 + 1000) - 2 * 78400
