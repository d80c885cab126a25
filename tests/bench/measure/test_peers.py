"""The peers (PyTorch, NumPy) compute what the JAX model computes, and measure() reports sanely.

Torch tests skip without PyTorch. bfloat16 bound: PyTorch rounds each bfloat16 matmul's output
to bfloat16, so against the float32 reference its log-probabilities may differ by up to
``BF16_PREDICT_ATOL`` and its parameter updates (``new - old``) by ``BF16_DELTA_RTOL`` relative
(norm of the difference over the norm of the reference update); about 5x the errors seen here.
"""

from __future__ import annotations

import sys

import jax
import numpy as np
import pytest

from bench import catalog
from bench.measure import peers
from bench.protocol import TimingSettings
from mnist_kernels import model

SIZES = [784, 32, 32, 10]
BATCH = 16
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
    """JAX's parameters after 1 and 3 steps, and its log-probabilities at the start."""
    x, y = data
    params = model.init_params(SIZES)
    update = jax.jit(model.update)
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


def flat(params):
    return np.concatenate([a.ravel() for wb in params for a in wb])


def delta_rel(got, want, init):
    """Relative difference of the updates ``got - init`` and ``want - init``."""
    d, r = flat(got) - flat(init), flat(want) - flat(init)
    return float(np.linalg.norm(d - r) / np.linalg.norm(r))


def check_float32(variant, data, reference):
    step = peers.make_step(variant, SIZES)
    for n in (1, 3):
        got = run_steps(step, data, n)
        assert all(w.dtype == np.float32 and b.dtype == np.float32 for w, b in got)
        assert max_abs(got, reference["after"][n]) < ATOL, (variant, n)
    pred = run_predict(step, data)
    assert pred.shape == (BATCH, 10) and pred.dtype == np.float32
    np.testing.assert_allclose(pred, reference["predict"], rtol=0, atol=ATOL)


def test_numpy_matches_jax(data, reference):
    check_float32("numpy", data, reference)


def test_numpy_does_not_touch_callers_arrays(data):
    init = model.init_params(SIZES)
    kept = [(w.copy(), b.copy()) for w, b in init]
    step = peers.make_step("numpy", SIZES)
    step.update(step.params_from_numpy(init), *data)
    assert max_abs(init, kept) == 0.0


def test_torch_eager_matches_jax(data, reference):
    pytest.importorskip("torch")
    check_float32("torch-eager", data, reference)


def test_torch_and_jax_bfloat16_steps_are_the_same_arithmetic(data):
    """Both sides run every matmul on bfloat16 operands with float32 sums and bfloat16
    results: their SGD steps agree far better than either agrees with float32's."""
    pytest.importorskip("torch")
    import functools

    from mnist_kernels.matmul import Compute

    lr = 0.5
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
    pytest.importorskip("torch")
    step = peers.make_step("torch-eager", SIZES, dtype="bfloat16")
    got = run_steps(step, data, 3)
    assert all(w.dtype == np.float32 for w, _ in got)  # parameters stay float32
    rel = delta_rel(got, reference["after"][3], reference["init"])
    assert 0 < rel < BF16_DELTA_RTOL
    pred = run_predict(step, data)
    err = float(np.max(np.abs(pred - reference["predict"])))
    assert 0 < err < BF16_PREDICT_ATOL  # nonzero: the matmuls really ran in bfloat16


def test_torch_compile_matches_jax_and_measures(data, reference):
    """The one compile test: update (1 and 3 steps) and predict, then measure() on a tiny model."""
    pytest.importorskip("torch")
    reason = peers.unavailable_reason("torch-compile")
    if reason is not None:
        pytest.skip(reason)
    check_float32("torch-compile", data, reference)
    images, labels = data
    spec = make_spec("torch-compile", "update", [784, 10], batch_size=8)
    row = peers.measure(spec, images, labels, QUICK)
    check_row(row, spec)
    assert row["compile_s"] is not None and row["compile_s"] >= 0
    assert row["first_call_s"] >= row["compile_s"]
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


def check_row(row, spec):
    flops_fn = model.flops_update if spec["kernel"] == "update" else model.flops_forward
    assert row["flops"] == flops_fn(spec["layer_sizes"], spec["batch_size"])
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
        pytest.importorskip("torch")
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
    assert row["flops"] == model.flops_update([784, 10], 40)


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
    torch = pytest.importorskip("torch")
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
