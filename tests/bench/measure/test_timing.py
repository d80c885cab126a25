"""bench.measure.timing and bench.measure.kernels: a known duration, sync discipline, statistics, HLO counts,
compile counting, compile phases, and one in-process measurement of every variant.

These check behaviour, not speed: durations are either known (a host callback that sleeps) or
compared with each other, with margins wide enough for a loaded 2-core machine.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench.measure import hlo, timing
from bench.measure import kernels as measure
from bench.protocol import TimingSettings
from mnist_kernels import model, variants

#: Settings that take a few samples quickly: the measure() tests check behaviour, not speed.
VERY_QUICK = TimingSettings(
    warmup_calls=1,
    min_sample_s=0.001,
    budget_s=0.02,
    min_samples=3,
    sync_budget_s=0.01,
    min_sync_samples=2,
    compile_repeats=2,
)
SIZES = [784, 32, 10]
BATCH = 16
#: FLOPs of SIZES at BATCH, counted by hand: a matmul of (b, n) by (n, m) is 2*b*n*m.
#: predict: 2*16*(784*32 + 32*10); an SGD step adds the weight gradients (as much again) and the
#: input gradient of the second layer (2*16*32*10); the first layer's input needs none.
PREDICT_FLOPS = 813_056
UPDATE_FLOPS = 1_636_352


def relative_gap(a: float, b: float) -> float:
    return abs(a / b - 1.0)


# --- a kernel of known duration -----------------------------------------------------------


def sleeping_kernel(seconds: float):
    """A jitted function whose only cost is a host callback that sleeps ``seconds``."""

    def host_sleep(x):
        time.sleep(seconds)
        return x

    @jax.jit
    def f(x):
        # the output depends on the callback's: XLA can neither drop nor reorder it
        return jax.pure_callback(host_sleep, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + 1.0

    return f


def test_known_duration_is_measured_within_five_percent():
    # time.sleep oversleeps by ~0.1 ms and a callback's wake-up costs ~1-2 ms under load: at
    # 100 ms per call those fixed costs stay near 2%, well inside the 5% asked for.
    duration = 0.1
    f = sleeping_kernel(duration)
    settings = TimingSettings(
        warmup_calls=2,
        min_sample_s=0.15,  # two calls per pipelined sample
        budget_s=0.6,
        min_samples=3,
        sync_budget_s=0.2,
        min_sync_samples=3,
    )
    figures, state = timing.steady_state(f, jax.block_until_ready, jnp.zeros(4), settings)
    jax.block_until_ready(state)
    assert figures["loops_per_sample"] >= 2, "the pipelined path (k calls, one sync) was not used"
    assert figures["n_samples"] >= 3 and len(figures["sync_samples_s"]) >= 3
    assert figures["call_median_s"] == pytest.approx(duration, rel=0.05)
    assert figures["sync_call_median_s"] == pytest.approx(duration, rel=0.05)
    assert figures["call_min_s"] >= duration  # a sleep never ends early
    assert all(v > 0 for v in figures["samples_s"])


# --- dropping block_until_ready would be caught ---------------------------------------------


def slow_kernel():
    """A real compute kernel of some 20 ms on 2 cores: a chain of 512x512 matmuls."""
    a = jnp.asarray(np.random.RandomState(0).rand(512, 512).astype(np.float32) / 512)

    @jax.jit
    def f(x):
        for _ in range(12):
            x = jnp.tanh(x @ a)
        return x

    return f, a


def no_sync(state):
    """A broken sync: returns at once, the work behind ``state`` still queued."""
    return None


def test_pipelined_and_synced_medians_agree_and_a_missing_sync_is_caught():
    f, a = slow_kernel()
    settings = TimingSettings(
        warmup_calls=2,
        min_sample_s=0.1,  # several calls per pipelined sample
        budget_s=0.6,
        min_samples=3,
        sync_budget_s=0.3,
        min_sync_samples=5,
    )
    # The two medians are taken one after the other; on a machine shared with other work the
    # load can change in between, so a disagreement is re-measured (at most 3 times). A real
    # bug (a sync that does not wait) disagrees every time, as the second half shows.
    attempts = []
    for _ in range(3):
        figures, state = timing.steady_state(f, jax.block_until_ready, a, settings)
        jax.block_until_ready(state)
        attempts.append(figures)
        if relative_gap(figures["call_median_s"], figures["sync_call_median_s"]) < 0.15:
            break
    good = attempts[-1]
    gaps = [relative_gap(g["call_median_s"], g["sync_call_median_s"]) for g in attempts]
    assert gaps[-1] < 0.15, f"pipelined and synced medians disagree in every attempt: {gaps}"
    assert good["loops_per_sample"] >= 2, "the pipelined path (k calls, one sync) was not used"
    true_call_s = good["sync_call_median_s"]
    assert true_call_s > 0.005, "the kernel is too fast for dispatch to be negligible"

    # A broken sync, through steady_state itself: each call only dispatches, so the "synced"
    # samples (loops == 1: a call is longer than min_sample_s) time the dispatch alone. Few
    # enough calls that the runtime's queue of in-flight calls never fills and throttles them.
    broken_settings = TimingSettings(
        warmup_calls=2, min_sample_s=1e-9, budget_s=0.0, min_samples=6, max_samples=6
    )
    broken, state = timing.steady_state(f, no_sync, a, broken_settings)
    jax.block_until_ready(state)
    assert broken["loops_per_sample"] == 1
    assert broken["call_median_s"] < 0.5 * true_call_s
    assert relative_gap(broken["call_median_s"], true_call_s) >= 0.15  # the check would fail

    # ... and a pipelined sample (k calls, then the sync) whose sync is broken: far too fast,
    # so it would disagree with the synced median.
    k = 4
    elapsed, state = timing._timed(f, no_sync, jax.block_until_ready(f(a)), k)
    jax.block_until_ready(state)
    assert elapsed / k < 0.5 * true_call_s
    assert relative_gap(elapsed / k, true_call_s) >= 0.15


# --- dispatch overhead, on a fake asynchronous device ---------------------------------------


class AsyncDevice:
    """A fake clock and device: a call costs the host ``dispatch_s`` and queues ``run_s`` of
    device work, which starts when the device is free; a sync waits for the queue to drain."""

    def __init__(self, dispatch_s: float, run_s: float):
        self.now, self.free_at = 0.0, 0.0
        self.dispatch_s, self.run_s = dispatch_s, run_s

    def clock(self) -> float:
        return self.now

    def call(self, state):
        self.now += self.dispatch_s
        self.free_at = max(self.free_at, self.now) + self.run_s
        return state

    def sync(self, state):
        self.now = max(self.now, self.free_at)


@pytest.mark.parametrize("steps_per_call", [1, 8])
def test_dispatch_overhead_is_the_host_time_pipelining_hides(monkeypatch, steps_per_call):
    """20 us of dispatch ahead of 100 us of device work: pipelined calls overlap the dispatch
    with the device (100 us a call), synced ones pay both (120 us); the overhead is the 20 us,
    per SGD step. Hand-made figures, not the formula: an overhead taken from the wrong sample
    set, or not per step, or a pipelined path that syncs every call, gives another number."""
    device = AsyncDevice(dispatch_s=20e-6, run_s=100e-6)
    monkeypatch.setattr(timing, "clock", device.clock)
    settings = TimingSettings(
        warmup_calls=2, min_sample_s=0.01, budget_s=0.1, min_samples=6, sync_budget_s=0.05
    )
    figures, _ = timing.steady_state(device.call, device.sync, None, settings)
    row = timing.per_step(figures, steps_per_call)
    n = steps_per_call
    assert figures["loops_per_sample"] >= 64  # pipelined samples of many calls
    assert row["step_median_s"] == pytest.approx(100e-6 / n, rel=0.01)
    assert row["sync_step_median_s"] == pytest.approx(120e-6 / n, rel=1e-6)
    assert row["dispatch_overhead_s"] == pytest.approx(20e-6 / n, rel=0.05)


def test_a_dispatch_bound_call_is_timed_by_its_dispatch(monkeypatch):
    """When dispatch outlasts the device work the host is the bottleneck: pipelined calls take
    the dispatch time, and pipelining hides the device's part."""
    device = AsyncDevice(dispatch_s=50e-6, run_s=10e-6)
    monkeypatch.setattr(timing, "clock", device.clock)
    figures, _ = timing.steady_state(device.call, device.sync, None, TimingSettings())
    row = timing.per_step(figures, 1)
    assert row["step_median_s"] == pytest.approx(50e-6, rel=0.01)
    assert row["dispatch_overhead_s"] == pytest.approx(10e-6, rel=0.05)


# --- HLO counts -----------------------------------------------------------------------------

HLO = """\
HloModule jit_step, is_scheduled=true, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%fused_computation (param_0: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  %tanh.1 = f32[4]{0} tanh(%param_0)
  ROOT %multiply.2 = f32[4]{0} multiply(%tanh.1, %tanh.1)
}

%fused_computation.1 (param_0.1: f32[4], param_1.1: f32[4]) -> f32[4] {
  %param_0.1 = f32[4]{0} parameter(0)
  %param_1.1 = f32[4]{0} parameter(1)
  ROOT %add.3 = f32[4]{0} add(%param_0.1, %param_1.1)
}

ENTRY %main.9 (x.1: f32[4]) -> f32[4] {
  %x.1 = f32[4]{0} parameter(0), metadata={op_name="x"}
  // a comment line = not an instruction
  %loop_fusion = f32[4]{0} fusion(%x.1), kind=kLoop, calls=%fused_computation
  %copy.4 = f32[4]{0} copy(%x.1)
  ROOT %add_fusion = f32[4]{0} fusion(%loop_fusion, %copy.4), kind=kLoop, calls=%fused_computation.1
}
"""


def test_hlo_counts_on_handwritten_text():
    # ENTRY runs 4 instructions, 2 of them fusions; the fused computations' bodies are inside
    # those two kernels and do not count
    assert hlo.counts(HLO) == {"hlo_ops": 4, "hlo_fusions": 2}
    assert hlo.counts("") == {"hlo_ops": 0, "hlo_fusions": 0}


def test_hlo_counts_on_a_compiled_function():
    def f(x, w):
        for _ in range(3):
            x = jnp.tanh(x @ w) * 2.0 + 1.0
        return x.sum()

    x, w = jnp.ones((8, 16)), jnp.ones((16, 16))
    compiled = jax.jit(f).trace(x, w).lower().compile()
    counts = hlo.counts(compiled.as_text())
    assert counts["hlo_ops"] > 0
    assert 0 <= counts["hlo_fusions"] <= counts["hlo_ops"]
    facts = timing.compiled_facts(compiled)
    assert facts["hlo_ops"] == counts["hlo_ops"]
    assert facts["hlo_fusions"] == counts["hlo_fusions"]
    assert facts["xla_flops"] >= 3 * 2 * 8 * 16 * 16  # at least the matmuls
    assert facts["bytes_accessed"] > 0 and facts["peak_memory_bytes"] > 0


# --- compile counting -----------------------------------------------------------------------


def test_compile_counter_counts_new_compiles_only():
    f = jax.jit(lambda x: x * 3.0 - 1.0)
    x = jax.block_until_ready(jnp.ones(5))  # made outside: its own compile does not count
    with timing.CompileCounter.counting() as first:
        jax.block_until_ready(f(x))
    assert first.count == 1
    with timing.CompileCounter.counting() as again:
        for _ in range(5):
            x = jax.block_until_ready(f(x))
    assert again.count == 0
    with timing.CompileCounter.counting() as new_shape:
        jax.block_until_ready(f(jnp.ones(7)))  # jnp.ones(7) may compile too: at least one
    assert new_shape.count >= 1
    # not counting outside the block
    jax.block_until_ready(jax.jit(lambda x: x + 2.0)(x))
    assert first.count == 1 and again.count == 0


def test_compile_counters_nest():
    with timing.CompileCounter.counting() as outer:
        jax.block_until_ready(jax.jit(lambda x: x - 4.0)(jnp.zeros(3)))
        with timing.CompileCounter.counting() as inner:
            jax.block_until_ready(jax.jit(lambda x: x * 5.0)(jnp.zeros(3)))
    assert inner.count >= 1 and outer.count >= inner.count + 1


# --- compile phases -------------------------------------------------------------------------


def compile_phases(depth: int) -> dict[str, float]:
    sizes = [784, *([64] * depth), 10]
    kernel = variants.get("jit", devices=jax.devices()[:1])
    rng = np.random.RandomState(0)
    x = rng.rand(32, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 32)]
    params, batch = kernel.place(model.init_params(sizes), (x, y))
    compiled, phases = timing.aot_compile(kernel.update_fn, params, batch)
    new = compiled(params, batch)
    assert model.layer_sizes_of(kernel.to_host(new)) == sizes  # it compiled the update
    return phases


def test_aot_compile_phases_are_positive_and_deeper_compiles_longer():
    shallow, deep = [], []
    for _ in range(3):  # interleaved, so a change of load hits both alike
        shallow.append(compile_phases(1))
        deep.append(compile_phases(16))
    for phases in shallow + deep:
        assert set(phases) == {"trace_s", "lower_s", "compile_s"}
        assert all(v > 0 for v in phases.values()), phases
    compile_shallow = np.median([p["compile_s"] for p in shallow])
    compile_deep = np.median([p["compile_s"] for p in deep])
    assert compile_deep > compile_shallow
    total = [np.median([sum(p.values()) for p in runs]) for runs in (shallow, deep)]
    assert total[1] > total[0]


def test_cold_compiles_compile_afresh_each_time():
    """Every repeat is a real backend compile (the caches cleared before it), and the row gets
    each phase's median, the whole compile's median inside its interval and the raw samples."""
    kernel = variants.get("jit", devices=jax.devices()[:1])
    x, y = np.zeros((8, 784), np.float32), np.zeros((8, 10), np.float32)
    params, batch = kernel.place(model.init_params([784, 16, 10]), (x, y))
    with timing.CompileCounter.counting() as counter:
        compiled, cols = timing.cold_compiles(
            lambda: timing.aot_compile(kernel.update_fn, params, batch), 4
        )
    assert counter.count == 4
    assert cols["n_compiles"] == 4 and len(cols["cold_compile_samples_s"]) == 4
    for phase in ("trace", "lower", "compile"):
        assert len(cols[f"{phase}_samples_s"]) == 4
        assert cols[f"{phase}_s"] == pytest.approx(np.median(cols[f"{phase}_samples_s"]))
    totals = np.sum([cols[f"{p}_samples_s"] for p in ("trace", "lower", "compile")], axis=0)
    assert cols["cold_compile_samples_s"] == pytest.approx(list(totals))
    low, high = cols["cold_compile_ci_low_s"], cols["cold_compile_ci_high_s"]
    assert low <= cols["cold_compile_s"] <= high and cols["cold_compile_ci_level"] > 0.8
    assert model.layer_sizes_of(kernel.to_host(compiled(params, batch))) == [784, 16, 10]


# --- measure(): every variant ---------------------------------------------------------------


def n_devices_for(name: str) -> int:
    return 4 if variants.is_multi_device(name) else 1


def spec_for(name: str, kernel: str = "update") -> dict:
    return {
        "framework": "jax",
        "variant": name,
        "kernel": kernel,
        "layer_sizes": list(SIZES),
        "batch_size": BATCH,
        "dtype": "float32",
        "n_devices": n_devices_for(name),
        "backend": "cpu",
        "lr": 0.001,
        "options": {},
    }


@functools.cache
def measured(name: str, kernel: str = "update") -> dict:
    rng = np.random.RandomState(0)
    images = rng.rand(256, 784).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 256)]
    spec = spec_for(name, kernel)
    devices = jax.devices()[: spec["n_devices"]]
    return measure.measure(spec, images, labels, VERY_QUICK, devices=devices)


@pytest.mark.parametrize("name", variants.names())
def test_measure_every_variant(name):
    row = measured(name)
    assert row["recompiles"] == 0
    assert row["step_median_s"] > 0
    assert row["n_samples"] >= 3
    assert row["flops"] == UPDATE_FLOPS * row["work_multiplier"]
    assert row["work_multiplier"] == (4 if name == "ensemble" else 1)
    assert row["steps_per_call"] == (8 if name == "scan" else 1)
    assert len(row["samples_s"]) == row["n_samples"]
    assert row["compile_s"] > 0 and row["lower_s"] > 0 and row["first_call_s"] > 0
    assert row["n_compiles"] == 2 and len(row["cold_compile_samples_s"]) == 2
    assert row["cold_compile_ci_low_s"] <= row["cold_compile_s"] <= row["cold_compile_ci_high_s"]
    if name != "pmap":  # a pmap object has lower() only: its tracing is inside lower_s
        assert row["trace_s"] > 0
    assert row["step_min_s"] <= row["step_median_s"]
    assert row["step_ci_low_s"] <= row["step_median_s"] <= row["step_ci_high_s"]
    assert row["sync_step_median_s"] > 0 and row["dispatch_overhead_s"] is not None
    assert row["hlo_ops"] > 0 and 0 <= row["hlo_fusions"] <= row["hlo_ops"]
    assert row["device_kind"] == jax.devices()[0].device_kind


@pytest.mark.parametrize("name", variants.names())
def test_xla_cost_is_global_and_per_step(name):
    """XLA's FLOPs are converted to one SGD step over all devices, like the analytic ones.

    The update's matmuls are nearly all its FLOPs, so the two must be close whatever the
    variant: a per-device figure (off by the device count) or a per-call one (off by the
    steps per call) is far outside.
    """
    row = measured(name)
    assert row["xla_flops"] is not None
    ratio = row["xla_flops"] / row["flops"]
    assert 0.8 < ratio < 1.5, (
        f"{name}: xla_flops is {ratio:.3f}x the analytic FLOPs of one step "
        f"({n_devices_for(name)} devices, {row['steps_per_call']} steps per call)"
    )


def test_measure_predict_for_jit():
    row = measured("jit", "predict")
    assert row["recompiles"] == 0
    assert row["step_median_s"] > 0 and row["n_samples"] >= 3
    assert row["flops"] == PREDICT_FLOPS
    assert row["steps_per_call"] == 1 and row["work_multiplier"] == 1
    assert row["compile_s"] > 0 and row["trace_s"] > 0
    # a forward pass costs less than a whole SGD step
    assert row["flops"] < measured("jit")["flops"]


# --- the epoch kernel -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "dtype"),
    [("notebook", "float32"), ("jit", "float32"), ("scan", "float32"), ("jit", "bfloat16")],
)
def test_measure_epoch_times_whole_epochs(variant, dtype):
    from bench.measure.epoch import measure_epoch
    from mnist_kernels.data import pixels_to_float

    rng = np.random.RandomState(0)
    images = pixels_to_float(rng.randint(0, 256, (1000, 784)).astype(np.uint8))
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 1000)]
    spec = {**spec_for(variant), "kernel": "epoch", "layer_sizes": [784, 10], "batch_size": 128}
    if variant == "notebook":
        spec["grad_layout"] = "stock"
    if dtype == "bfloat16":  # a bfloat16 row's precision names its arithmetic
        spec.update(dtype="bfloat16", precision="bf16")
    row = measure_epoch(spec, images, labels, TimingSettings.preset("quick"))
    resident = {"scan": "uint8"}.get(variant, "host float32")
    assert row["options"]["resident"] == resident  # the fused epoch keeps the stored bytes

    assert row["steps_per_call"] == 8  # 7 batches of 128 and one of 104
    assert row["n_samples"] >= 6 and row["step_ci_level"] >= 0.95
    assert row["flops"] == 2 * 128 * 7840 * 2  # one step: forward and the weight gradient
    assert row["recompiles"] == 0 and row["step_median_s"] > 0
    assert row["n_compiles"] == TimingSettings.preset("quick").compile_repeats
    assert row["step_median_s"] * row["steps_per_call"] == pytest.approx(
        np.median(np.asarray(row["samples_s"]) * 8)
    )
    # the kernels an epoch launches: a loop's are its steps' (8 calls of one step); the fused
    # epoch's are counted through its loop
    launches = row["launches_per_call"]
    assert launches is not None and launches >= 8 * 4
    if variant != "scan":
        assert launches % 8 == 0


def test_a_worker_pays_the_one_time_compile_costs_before_it_measures():
    """Its init compiles through the measured path (the first configuration a worker measured
    used to pay the compiler's start-up: lower_s 22.8 ms, then 9.7 ms for the same shape)."""
    from bench.measure.worker import Worker

    worker = Worker()
    with timing.CompileCounter.counting() as during_init:
        ready = worker.init({"dataset": "synthetic", "n_examples": 64, "settings": {}})
    assert during_init.count >= 2  # the warm-up's predict and update
    assert ready["event"] == "ready" and ready["warmed"]["compile_s"] > 0


class FakeDevice:
    """A device whose allocator statistics follow a script (a GPU's never reset their peak)."""

    def __init__(self, *stats):
        self.stats = list(stats)

    def memory_stats(self):
        return self.stats.pop(0)


def test_device_memory_is_the_configurations_own_or_none():
    # the peak rose while it ran: its own use is the new peak less what was in use before
    dev = FakeDevice(
        {"bytes_in_use": 100, "peak_bytes_in_use": 500},
        {"bytes_in_use": 100, "peak_bytes_in_use": 900},
    )
    assert measure.own_peak_bytes([dev], measure.memory_in_use([dev])) == 800
    # the peak is an earlier, larger configuration's: not this one's figure
    dev = FakeDevice(
        {"bytes_in_use": 100, "peak_bytes_in_use": 5000},
        {"bytes_in_use": 100, "peak_bytes_in_use": 5000},
    )
    assert measure.own_peak_bytes([dev], measure.memory_in_use([dev])) is None
    cpu = FakeDevice(None, None)  # the CPU keeps no count
    assert measure.memory_in_use([cpu]) is None and measure.own_peak_bytes([cpu], None) is None


def test_multi_device_calls_are_pipelined_with_a_bounded_queue(monkeypatch):
    """Multi-device CPU rows are timed like one-device rows, with at most MAX_IN_FLIGHT calls
    queued: one call in MAX_IN_FLIGHT waits for its result (unbounded, XLA:CPU's collectives
    deadlock); without a bound none does."""
    waited = []
    monkeypatch.setattr(jax, "block_until_ready", lambda x: waited.append(x) or x)

    class Kernel:
        def update(self, p, batch):
            return p + 1

    bound = measure.MAX_IN_FLIGHT
    call = measure._timed_call({"kernel": "update"}, Kernel(), None, None, bound)
    state = 0
    for _ in range(3 * bound + 1):
        state = call(state)
    assert state == 3 * bound + 1 and waited == [bound, 2 * bound, 3 * bound]
    waited.clear()
    call = measure._timed_call({"kernel": "update"}, Kernel(), None, None, None)
    for _ in range(3 * bound):
        state = call(state)
    assert waited == []
    row = measured("shard_map")  # 4 devices
    assert row["options"]["max_in_flight"] == bound
