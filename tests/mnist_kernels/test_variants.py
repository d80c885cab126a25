"""Every variant equals the reference model on 1, 2 and 4 fake CPU devices.

Also: no recompiles in the steady state, bfloat16 within a documented bound, ``scan`` of S
different batches equals S ``jit`` steps, and ``train_epoch`` equals the notebook loop.
"""

import threading

import jax
import numpy as np
import pytest

import mnist_kernels as mk
from mnist_kernels import epoch, variants


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


# --------------------------------------------------------------------------- recompiles

# One listener for the whole module: jax.monitoring listeners cannot be unregistered one by
# one, so it counts every backend compile from import on and tests read differences.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles_lock = threading.Lock()
_compiles = [0]


def _count_compile(event, duration, **kwargs):
    if event == _COMPILE_EVENT:
        with _compiles_lock:
            _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def _compile_count():
    with _compiles_lock:
        return _compiles[0]


def _steady_kernel(name):
    """A kernel on 4 devices (1 for single-device variants) and its placed inputs."""
    x, y = _batch(16)
    if name == "scan":
        kernel = variants.get(name, devices=1, steps=4)
        batch = (np.stack([x] * 4), np.stack([y] * 4))
    else:
        kernel = variants.get(name, devices=4 if variants.is_multi_device(name) else 1)
        batch = (x, y)
    params, placed = kernel.place(mk.init_params([784, 32, 32, 10]), batch)
    return kernel, params, placed, kernel.place_inputs(x)


def test_compile_counter_sees_a_compile():
    before = _compile_count()
    fresh = jax.jit(lambda a: a * 3.0 + 1.0)  # a new function: its first call must compile
    jax.block_until_ready(fresh(np.ones(3, np.float32)))
    assert _compile_count() > before
    again = _compile_count()
    jax.block_until_ready(fresh(np.ones(3, np.float32)))  # cached: no compile
    assert _compile_count() == again


@pytest.mark.parametrize("name", variants.names())
def test_steady_state_compiles_nothing(name):
    kernel, params, batch, inputs = _steady_kernel(name)
    params = kernel.update(params, batch)  # first calls compile
    jax.block_until_ready(kernel.predict(params, inputs))
    before = _compile_count()
    for _ in range(5):
        params = kernel.update(params, batch)  # fed back: donated old params, new outputs
        out = kernel.predict(params, inputs)
    jax.block_until_ready((params, out))
    for _ in range(5):
        out = kernel.predict(params, inputs)
    jax.block_until_ready(out)
    assert _compile_count() - before == 0, f"{name}: steady state compiled"


# --------------------------------------------------------------------------- bfloat16


def _delta(params, start):
    return [
        a - np.asarray(o)
        for (w, b), (w0, b0) in zip(params, start, strict=True)
        for a, o in ((w, w0), (b, b0))
    ]


# bfloat16 keeps 8 significant bits, so each rounded matmul operand is off by at most
# 2**-9 (~2e-3) relative. One SGD step's gradient goes through about five matmuls (three
# forward, two backward input-gradients, plus the weight-gradient products), each adding
# roughly two such roundings: about 10 * 2**-9 ~ 2e-2 of the largest gradient entry in the
# worst aligned case (observed: < 1e-2 for every leaf and variant). With lr 0.001 the step
# (~1e-5..1e-4) is tiny next to the weights (|w| < 0.5), so compare the *step* new - old
# rather than the params: storing w - lr*g in float32 rounds by at most half an ulp of w
# (< 3e-8), under 3e-3 of any leaf's largest step. Bound: every leaf's
# |bf16 step - f32 step| <= 5e-2 * max|f32 step|. Log-probabilities (|z| ~ 2.3) go through
# three layers of the same rounding: observed 2.5e-3, bound 5e-2 absolute.
BF16_STEP_RTOL = 5e-2
BF16_PREDICT_ATOL = 5e-2


@pytest.mark.parametrize("name", variants.names())
def test_bfloat16_update_and_predict_close_to_float32(name):
    sizes = [784, 32, 32, 10]
    p0 = mk.init_params(sizes)
    x, y = _batch()
    ref_step = _delta(_reference(p0, (x, y), 1), p0)
    n_devices = 4 if variants.is_multi_device(name) else 1
    if name == "scan":
        kernel = variants.get(name, devices=1, dtype="bfloat16", steps=1)
        batch = (x[None], y[None])
    else:
        kernel = variants.get(name, devices=n_devices, dtype="bfloat16")
        batch = (x, y)
    params, placed = kernel.place(p0, batch)
    host = kernel.to_host(kernel.update(params, placed))
    if name == "ensemble":
        host = [(w[0], b[0]) for w, b in host]
    step = _delta(host, p0)
    for i, (got, want) in enumerate(zip(step, ref_step, strict=True)):
        scale = np.max(np.abs(want))
        assert scale > 0
        np.testing.assert_allclose(
            got, want, rtol=0, atol=BF16_STEP_RTOL * scale, err_msg=f"{name} leaf {i}"
        )
    # the dtype really took effect: bfloat16 rounding changes the step
    assert any(not np.array_equal(g, w) for g, w in zip(step, ref_step, strict=True))

    fresh = kernel.place(p0, batch)[0]
    pred = np.asarray(kernel.predict(fresh, kernel.place_inputs(x)))
    if name == "ensemble":
        pred = pred[0]
    want = np.asarray(mk.predict(p0, x))
    np.testing.assert_allclose(pred, want, rtol=0, atol=BF16_PREDICT_ATOL)
    assert not np.array_equal(pred, want)


# --------------------------------------------------------------------------- fused steps


def test_scan_of_different_batches_equals_sequential_jit():
    steps = 4
    p0 = mk.init_params([784, 32, 32, 10])
    batches = [_batch(16, seed=10 + s) for s in range(steps)]
    xs = np.stack([x for x, _ in batches])
    ys = np.stack([y for _, y in batches])
    assert not np.array_equal(xs[0], xs[1])

    jit = variants.get("jit", devices=1)
    params = jit.place(p0, batches[0])[0]
    for batch in batches:
        params = jit.update(params, jit.place(None, batch)[1])
    want = jit.to_host(params)

    scan = variants.get("scan", devices=1, steps=steps)
    params, placed = scan.place(p0, (xs, ys))
    got = scan.to_host(scan.update(params, placed))
    for (w, b), (rw, rb) in zip(got, want, strict=True):
        np.testing.assert_allclose(w, rw, atol=1e-5)
        np.testing.assert_allclose(b, rb, atol=1e-5)
    # not vacuous: the same batch repeated S times ends elsewhere
    same = scan.to_host(
        scan.update(*scan.place(p0, (np.stack([xs[0]] * steps), np.stack([ys[0]] * steps))))
    )
    assert not np.allclose(same[0][0], want[0][0], atol=1e-5)


def test_train_epoch_equals_notebook_loop():
    """One epoch: 1000 examples in batches of 128 is 7 full batches and a short one of 104."""
    n, batch_size, lr = 1000, 128, 0.01
    rng = np.random.RandomState(3)
    images = rng.rand(n, 784).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, n)]
    p0 = mk.init_params([784, 32, 32, 10])
    (perm,) = epoch.epoch_permutations(n, 1, seed=0)

    # The notebook loop exactly as mnist_kernels/train.py runs it: ceil(n / batch_size) steps
    # over consecutive slices of the permutation, the last one short.
    step = jax.jit(lambda p, b: mk.update(p, b, lr), donate_argnums=0)
    params = jax.device_put(p0)
    num_batches = -(-n // batch_size)
    for i in range(num_batches):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        if i == num_batches - 1:
            assert len(idx) == n - (num_batches - 1) * batch_size == 104
            before_short = [(np.asarray(w), np.asarray(b)) for w, b in params]
        params = step(params, (images[idx], labels[idx]))
    want = [(np.asarray(w), np.asarray(b)) for w, b in params]
    # the short batch moves the params by more than the tolerance, so it is checked too
    assert not np.allclose(before_short[0][0], want[0][0], atol=1e-5)

    got = epoch.train_epoch(
        jax.device_put(p0),
        jax.device_put(images),
        jax.device_put(labels),
        perm,
        batch_size=batch_size,
        lr=lr,
    )
    for (w, b), (rw, rb) in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(w), rw, atol=1e-5)
        np.testing.assert_allclose(np.asarray(b), rb, atol=1e-5)
