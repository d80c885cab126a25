"""The timing core: known durations, sync discipline, compile phases, recompile counting."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mnist_kernels as mk
from bench import measure, timing
from mnist_kernels import variants

TINY = timing.Settings(
    warmup_calls=1,
    min_sample_s=0.001,
    budget_s=0.02,
    min_samples=3,
    sync_budget_s=0.01,
    min_sync_samples=2,
)


def _sleeper(seconds):
    def host_sleep(x):  # a busy wait: exact, where time.sleep may oversleep under load
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return x

    @jax.jit
    def f(x):
        return jax.pure_callback(host_sleep, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + 1.0

    return f


def test_known_duration_within_five_percent():
    f = _sleeper(0.02)
    settings = timing.Settings(warmup_calls=1, min_sample_s=0.05, budget_s=0.5, min_samples=5)
    figures, _ = timing.steady_state(f, jax.block_until_ready, jnp.zeros(4), settings)
    assert figures["call_median_s"] == pytest.approx(0.02, rel=0.05)
    assert figures["loops_per_sample"] >= 2  # pipelined samples, not one call each


def _slow_kernel():
    a = jnp.asarray(np.random.RandomState(0).rand(512, 512).astype(np.float32) / 512)

    @jax.jit
    def f(x):
        for _ in range(8):
            x = jnp.tanh(x @ a)
        return x

    return f, a


def test_synced_and_pipelined_agree_and_a_missing_sync_is_caught():
    f, a = _slow_kernel()
    settings = timing.Settings(warmup_calls=2, min_sample_s=0.2, budget_s=0.5, min_samples=3)
    figures, _ = timing.steady_state(f, jax.block_until_ready, a, settings)
    assert figures["sync_call_median_s"] > 0.01  # a slow kernel: dispatch is noise
    assert figures["loops_per_sample"] >= 2
    ratio = figures["call_median_s"] / figures["sync_call_median_s"]
    assert 0.75 < ratio < 1.33
    # without the sync the clock stops before the work is done: far too fast
    state = jax.block_until_ready(f(a))
    unsynced, state = timing._timed(f, lambda s: None, state, 5)
    jax.block_until_ready(state)
    assert unsynced / 5 < 0.5 * figures["sync_call_median_s"]


def test_per_step_and_summary():
    figures = timing.summarize([0.4, 0.2, 0.3, 0.5, 0.6], [0.7, 0.8, 0.9], loops=4)
    lo, hi = figures["call_ci_low_s"], figures["call_ci_high_s"]
    assert lo <= figures["call_median_s"] <= hi
    steps = timing.per_step(figures, 4)
    assert steps["step_median_s"] == pytest.approx(0.1)
    assert steps["sync_step_median_s"] == pytest.approx(0.2)
    assert steps["dispatch_overhead_s"] == pytest.approx(0.1)
    assert steps["samples_s"] == pytest.approx([0.1, 0.05, 0.075, 0.125, 0.15])


def test_hlo_counts():
    text = """HloModule m
%fused_computation (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %t = f32[4]{0} tanh(%p)
}
ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  ROOT %f = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation
}
"""
    assert timing.hlo_counts(text) == {"hlo_ops": 2, "hlo_fusions": 1}
    compiled = jax.jit(lambda x: jnp.tanh(x @ x) + 1).trace(jnp.ones((8, 8))).lower().compile()
    facts = timing.compiled_facts(compiled)
    assert facts["hlo_ops"] > 0 and 0 <= facts["hlo_fusions"] <= facts["hlo_ops"]
    assert facts["xla_flops"] and facts["xla_flops"] >= 2 * 8**3


def test_compile_counter():
    f = jax.jit(lambda x: x * 3 - 1)
    x = jnp.ones(5)
    with timing.CompileCounter.counting() as first:
        f(x).block_until_ready()
    with timing.CompileCounter.counting() as again:
        for _ in range(3):
            f(x).block_until_ready()
    assert first.count >= 1
    assert again.count == 0


def _compile_s(depth):
    sizes = [784, *([64] * depth), 10]
    fn = jax.jit(mk.update)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in mk.init_params(sizes)]
    batch = (jnp.ones((8, 784)), jnp.ones((8, 10)))
    _, phases = timing.aot_compile(fn, params, batch)
    assert all(v > 0 for v in phases.values())
    return sum(phases.values())


def test_deeper_model_compiles_longer():
    shallow = np.median([_compile_s(1) for _ in range(3)])
    deep = np.median([_compile_s(16) for _ in range(3)])
    assert deep > shallow


def _spec(name, kernel="update"):
    n = 4 if variants.is_multi_device(name) else 1
    return {
        "framework": "jax",
        "variant": name,
        "kernel": kernel,
        "layer_sizes": [784, 32, 10],
        "batch_size": 16,
        "dtype": "float32",
        "n_devices": n,
        "backend": "cpu",
        "options": {"steps": 2} if name == "scan" else {},
    }


@pytest.mark.parametrize("name", variants.names())
def test_measure_every_variant_recompiles_nothing(name):
    rng = np.random.RandomState(0)
    images = rng.rand(64, 784).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 64)]
    spec = _spec(name)
    row = measure.measure(spec, images, labels, TINY, devices=jax.devices()[: spec["n_devices"]])
    assert row["recompiles"] == 0
    assert row["step_median_s"] > 0 and row["n_samples"] >= 3
    members = row["work_multiplier"]
    assert row["flops"] == mk.flops_update([784, 32, 10], 16) * members
    assert row["compile_s"] > 0 and row["lower_s"] > 0


def test_measure_predict():
    images = np.random.RandomState(0).rand(64, 784).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    row = measure.measure(_spec("jit", "predict"), images, labels, TINY)
    assert row["flops"] == mk.flops_forward([784, 32, 10], 16)
    assert row["recompiles"] == 0 and row["steps_per_call"] == 1
