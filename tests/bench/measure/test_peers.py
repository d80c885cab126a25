"""The peers (PyTorch, NumPy) compute what the JAX model computes, and measure() reports sanely.

Torch tests skip without PyTorch. bfloat16 bound: PyTorch rounds each bfloat16 matmul's output
to bfloat16, so against the float32 reference its log-probabilities may differ by up to
``BF16_PREDICT_ATOL`` and its parameter updates (``new - old``) by ``BF16_DELTA_RTOL`` relative
(norm of the difference over the norm of the reference update); about 5x the errors seen here.
"""

from __future__ import annotations

import functools
import sys

import jax
import numpy as np
import pytest

from bench import catalog
from bench.measure import peers
from bench.protocol import TimingSettings
from mnist_kernels import model
from tests.helpers import require_torch

SIZES = [784, 32, 32, 10]
BATCH = 16
#: a learning rate at which the steps move the parameters far enough for a wrong gradient to show
LR = 0.5
#: float32 peers against JAX: each parameter's update within this, relative (seen: ~1e-6); a
#: gradient 1% wrong in any one parameter is 1e-2
UPDATE_RTOL = 1e-4
#: float32 log-probabilities (about -2.3) within this
ATOL = 1e-5
BF16_PREDICT_ATOL = 0.02
BF16_DELTA_RTOL = 0.02
QUICK = TimingSettings.preset("quick")
#: the keys bench.results.samples.per_step returns
STEP_KEYS = (
    "n_samples",
    "loops_per_sample",
    "samples_s",
    "sync_samples_s",
    "step_median_s",
    "step_min_s",
    "step_mean_s",
    "step_std_s",
    "step_iqr_s",
    "step_ci_low_s",
    "step_ci_high_s",
    "sync_step_median_s",
    "dispatch_overhead_s",
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, BATCH)]
    return x, y


@pytest.fixture(scope="module")
def reference(data):
    """JAX's parameters after 1 and 3 steps at learning rate ``LR``, and its log-probabilities at
    the start."""
    x, y = data
    params = model.init_params(SIZES)
    update = jax.jit(functools.partial(model.update, lr=LR))
    after = {}
    p = params
    for n in (1, 2, 3):
        p = update(p, (x, y))
        after[n] = [(np.asarray(w), np.asarray(b)) for w, b in p]
    return {"init": params, "after": after, "predict": np.asarray(model.predict(params, x))}


def run_steps(step, data, n):
    x, y = data
    p = step.params_from_numpy(model.init_params(SIZES))
    xd, yd = step.to_device(x), step.to_device(y)
    for _ in range(n):
        p = step.update(p, xd, yd)
    step.sync(p)
    return step.params_to_numpy(p)


def run_predict(step, data):
    p = step.params_from_numpy(model.init_params(SIZES))
    return step.to_numpy(step.predict(p, step.to_device(data[0])))


def max_abs(got, want):
    return max(
        float(np.max(np.abs(g - w)))
        for gw, ww in zip(got, want, strict=True)
        for g, w in zip(gw, ww, strict=True)
    )


def each_delta_rel(got, want, init):
    """The largest relative difference of one parameter's update: ``|got - want| / |want - init|``
    over each weight and bias in turn, so no layer's error hides behind another's larger update."""
    return max(
        float(np.linalg.norm(g - w) / np.linalg.norm(w - i))
        for gs, ws, ins in zip(got, want, init, strict=True)
        for g, w, i in zip(gs, ws, ins, strict=True)
    )


def flat(params):
    return np.concatenate([a.ravel() for wb in params for a in wb])


def delta_rel(got, want, init):
    """Relative difference of the updates ``got - init`` and ``want - init``."""
    d, r = flat(got) - flat(init), flat(want) - flat(init)
    return float(np.linalg.norm(d - r) / np.linalg.norm(r))


def check_float32(variant, data, reference):
    step = peers.make_step(variant, SIZES, lr=LR)
    for n in (1, 3):
        got = run_steps(step, data, n)
        assert all(w.dtype == np.float32 and b.dtype == np.float32 for w, b in got)
        err = each_delta_rel(got, reference["after"][n], reference["init"])
        assert err < UPDATE_RTOL, (variant, n, err)
    pred = run_predict(step, data)
    assert pred.shape == (BATCH, 10) and pred.dtype == np.float32
    np.testing.assert_allclose(pred, reference["predict"], rtol=0, atol=ATOL)


def test_numpy_matches_jax(data, reference):
    check_float32("numpy", data, reference)


def test_the_update_check_catches_a_slightly_wrong_gradient(data, reference):
    """The check above fails a peer whose first-layer weight gradient is 1% off."""
    init = reference["init"]
    good = reference["after"][1]
    (w1, b1), *rest = good
    bad = [(w1 + 0.01 * (w1 - init[0][0]), b1), *rest]
    assert each_delta_rel(good, good, init) == 0.0
    assert each_delta_rel(bad, good, init) == pytest.approx(0.01, rel=1e-3)
    assert each_delta_rel(bad, good, init) > UPDATE_RTOL


def test_numpy_does_not_touch_callers_arrays(data):
    init = model.init_params(SIZES)
    kept = [(w.copy(), b.copy()) for w, b in init]
    step = peers.make_step("numpy", SIZES)
    step.update(step.params_from_numpy(init), *data)
    assert max_abs(init, kept) == 0.0


def test_torch_eager_matches_jax(data, reference):
    require_torch()
    check_float32("torch-eager", data, reference)


def test_torch_and_jax_bfloat16_steps_are_the_same_arithmetic(data):
    """Both sides run every matmul on bfloat16 operands with float32 sums and bfloat16
    results: their SGD steps agree far better than either agrees with float32's."""
    require_torch()
    from mnist_kernels.matmul import Compute

    lr = LR
    init = model.init_params(SIZES)
    jax_bf16 = jax.jit(functools.partial(model.update, lr=lr, compute=Compute("bfloat16")))
    jax_f32 = jax.jit(functools.partial(model.update, lr=lr))
    want = [(np.asarray(w), np.asarray(b)) for w, b in jax_bf16(init, data)]
    f32 = [(np.asarray(w), np.asarray(b)) for w, b in jax_f32(init, data)]
    step = peers.make_step("torch-eager", SIZES, dtype="bfloat16", lr=lr)
    p = step.params_from_numpy(init)
    got = step.params_to_numpy(step.update(p, step.to_device(data[0]), step.to_device(data[1])))
    same_arithmetic = delta_rel(got, want, init)
    assert same_arithmetic < 0.01 * delta_rel(f32, want, init), same_arithmetic


def test_torch_eager_bfloat16_close_to_float32(data, reference):
    require_torch()
    step = peers.make_step("torch-eager", SIZES, dtype="bfloat16", lr=LR)
    got = run_steps(step, data, 3)
    assert all(w.dtype == np.float32 for w, _ in got)  # parameters stay float32
    rel = delta_rel(got, reference["after"][3], reference["init"])
    assert 0 < rel < BF16_DELTA_RTOL
    pred = run_predict(step, data)
    err = float(np.max(np.abs(pred - reference["predict"])))
    assert 0 < err < BF16_PREDICT_ATOL  # nonzero: the matmuls really ran in bfloat16


def test_torch_compile_matches_jax_and_measures(data, reference):
    """The one compile test: update (1 and 3 steps) and predict, then measure() on a tiny model,
    twice: each measurement's first call is a cold compile (seconds, against microseconds a
    step), the second included, so caches from the first did not make it cheap."""
    require_torch()
    reason = peers.unavailable_reason("torch-compile")
    if reason is not None:
        pytest.skip(reason)
    check_float32("torch-compile", data, reference)
    images, labels = data
    spec = make_spec("torch-compile", "update", [784, 10], batch_size=8)
    for _ in range(2):
        row = peers.measure(spec, images, labels, QUICK)
        check_row(row, spec)
        assert row["compile_s"] > 100 * row["step_median_s"], row["compile_s"]
        assert row["recompiles"] == 0


def make_spec(variant, kernel, sizes, batch_size=8, dtype="float32"):
    return {
        "framework": catalog.framework(variant),
        "variant": variant,
        "kernel": kernel,
        "layer_sizes": list(sizes),
        "batch_size": batch_size,
        "dtype": dtype,
        "n_devices": 1,
        "backend": "cpu",
        "lr": 0.001,
        "options": {},
    }


#: FLOPs counted by hand (a (b, n) by (n, m) matmul is 2*b*n*m): predict is every layer's
#: forward matmul; an SGD step adds each weight's gradient (as much again) and the input
#: gradients of every layer but the first.
HAND_FLOPS = {
    # 2*8*(784*32 + 32*32 + 32*10); 2 * that + 2*8*(32*32 + 32*10)
    ("predict", "784,32,32,10", 8): 422_912,
    ("update", "784,32,32,10", 8): 867_328,
    # 2*8*784*10, twice, no input gradient
    ("update", "784,10", 8): 250_880,
    ("update", "784,10", 40): 1_254_400,
}


def check_row(row, spec):
    sizes = ",".join(map(str, spec["layer_sizes"]))
    assert row["flops"] == HAND_FLOPS[spec["kernel"], sizes, spec["batch_size"]]
    assert row["step_median_s"] > 0 and row["step_min_s"] > 0
    assert row["step_min_s"] <= row["step_median_s"]
    assert row["n_samples"] >= QUICK.min_samples
    assert row["n_samples"] == len(row["samples_s"])
    assert row["sync_step_median_s"] > 0 and len(row["sync_samples_s"]) >= 1
    assert row["first_call_s"] > 0
    assert row["backend"] == "cpu" and row["device_kind"] == "cpu"
    assert row["steps_per_call"] == 1 and row["work_multiplier"] == 1
    for key in ("trace_s", "lower_s", "xla_flops", "bytes_accessed", "hlo_ops", "hlo_fusions"):
        assert row[key] is None
    assert row["peak_memory_bytes"] is None  # CPU
    assert set(STEP_KEYS) <= set(row)


@pytest.mark.parametrize(
    ("variant", "kernel"),
    [
        ("numpy", "update"),
        ("numpy", "predict"),
        ("torch-eager", "update"),
        ("torch-eager", "predict"),
    ],
)
def test_measure_tiny(variant, kernel, data):
    if catalog.framework(variant) == "torch":
        require_torch()
    images, labels = data
    spec = make_spec(variant, kernel, SIZES, batch_size=8)
    row = peers.measure(spec, images, labels, QUICK)
    check_row(row, spec)
    assert row["compile_s"] is None and row["recompiles"] is None


def test_measure_repeats_short_data(data):
    images, labels = data
    row = peers.measure(
        make_spec("numpy", "update", [784, 10], batch_size=40), images, labels, QUICK
    )
    assert row["flops"] == HAND_FLOPS["update", "784,10", 40]


def test_numpy_reasons():
    assert peers.unavailable_reason("numpy") is None
    assert "bfloat16" in peers.unavailable_reason("numpy", "cpu", "bfloat16")
    assert "CPU only" in peers.unavailable_reason("numpy", "gpu")
    assert peers.unavailable_reason("numpy", "tpu") is not None
    assert peers.unavailable_reason("numpy", "cpu", "float16") is not None
    with pytest.raises(ValueError, match="unknown peer"):
        peers.unavailable_reason("jit")
    with pytest.raises(peers.PeerUnavailable, match="bfloat16"):
        peers.measure(make_spec("numpy", "update", SIZES, dtype="bfloat16"), *data_arrays(), QUICK)
    with pytest.raises(peers.PeerUnavailable, match="one device"):
        spec = {**make_spec("numpy", "update", SIZES), "n_devices": 2}
        peers.measure(spec, *data_arrays(), QUICK)


def data_arrays():
    return np.zeros((8, 784), np.float32), np.eye(10, dtype=np.float32)[np.arange(8) % 10]


def test_torch_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for variant in ("torch-eager", "torch-compile"):
        for backend in ("cpu", "gpu"):
            assert peers.unavailable_reason(variant, backend) == peers.INSTALL_HINT
        spec = make_spec(variant, "update", SIZES)
        with pytest.raises(peers.PeerUnavailable) as info:
            peers.measure(spec, *data_arrays(), QUICK)
        assert str(info.value) == peers.INSTALL_HINT
        with pytest.raises(peers.PeerUnavailable):
            peers.make_step(variant, SIZES)
    assert peers.unavailable_reason("numpy") is None  # numpy does not need torch


def test_torch_gpu_reason():
    torch = require_torch()
    reason = peers.unavailable_reason("torch-eager", "gpu")
    if torch.cuda.is_available():
        assert reason is None
    else:
        assert reason is not None and ("CUDA" in reason)
        with pytest.raises(peers.PeerUnavailable, match="CUDA"):
            peers.measure(
                {**make_spec("torch-eager", "update", SIZES), "backend": "gpu"},
                *data_arrays(),
                QUICK,
            )


def test_torch_tests_fail_rather_than_skip_when_the_peers_are_required(monkeypatch):
    """Where the peers were meant to be installed (CI, or nox once they installed), a missing
    PyTorch is a failure; elsewhere its tests skip with the reason."""
    from tests import helpers

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    monkeypatch.setenv(helpers.REQUIRE_PEERS_ENV, "1")
    with pytest.raises(ImportError):
        require_torch()
    monkeypatch.delenv(helpers.REQUIRE_PEERS_ENV)
    with pytest.raises(pytest.skip.Exception, match="PyTorch is not installed"):
        require_torch()
