"""Every variant equals the reference model on 1, 2 and 4 fake CPU devices."""

import jax
import numpy as np
import pytest

import mnist_kernels as mk
from mnist_kernels import variants


def _batch(n=16, seed=1):
    rng = np.random.RandomState(seed)
    return rng.rand(n, 784).astype(np.float32), np.eye(10, dtype=np.float32)[rng.randint(0, 10, n)]


def _reference(params, batch, steps):
    step = jax.jit(mk.update)
    for _ in range(steps):
        params = step(params, batch)
    return [(np.asarray(w), np.asarray(b)) for w, b in params]


CASES = [
    (n, d) for n in variants.names() for d in ((1, 2, 4) if variants.is_multi_device(n) else (1,))
]


@pytest.mark.parametrize(("name", "n_devices"), CASES)
@pytest.mark.parametrize("steps", [1, 10])
def test_update_and_predict_match_reference(name, n_devices, steps):
    sizes = [784, 32, 32, 10]
    p0 = mk.init_params(sizes)
    x, y = _batch()
    ref = _reference(p0, (x, y), steps)
    if name == "scan":
        kernel = variants.get(name, devices=n_devices, steps=steps)
        params, batches = kernel.place(p0, (np.stack([x] * steps), np.stack([y] * steps)))
        params = kernel.update(params, batches)
    else:
        kernel = variants.get(name, devices=n_devices)
        params, batch = kernel.place(p0, (x, y))
        for _ in range(steps):
            params = kernel.update(params, batch)
    host = kernel.to_host(params)
    if name == "ensemble":
        host = [(w[0], b[0]) for w, b in host]
    for (w, b), (rw, rb) in zip(host, ref, strict=True):
        np.testing.assert_allclose(w, rw, atol=1e-5)
        np.testing.assert_allclose(b, rb, atol=1e-5)
    fresh = kernel.place(p0, batches if name == "scan" else (x, y))[0]
    pred = np.asarray(kernel.predict(fresh, kernel.place_inputs(x)))
    if name == "ensemble":
        pred = pred[0]
    np.testing.assert_allclose(pred, mk.predict(p0, x), atol=1e-5)


def test_names_lists_all_eight():
    assert set(variants.names()) == {
        "jit",
        "vmap",
        "pmap",
        "sharded",
        "shard_map",
        "scan",
        "sharded_tp",
        "ensemble",
    }


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="known variants"):
        variants.get("nope")
    with pytest.raises(ValueError, match="unknown dtype"):
        variants.get("jit", dtype="float16")
    with pytest.raises(ValueError, match="devices asked for"):
        variants.get("sharded", devices=64)
    kernel = variants.get("shard_map", devices=4)
    x, y = _batch(126)
    with pytest.raises(ValueError, match="batch_size 126 is not divisible by 4 devices"):
        kernel.place(mk.init_params([784, 10]), (x, y))
    with pytest.raises(ValueError, match="inputs of width"):
        kernel.place(mk.init_params([100, 10]), _batch(8))
