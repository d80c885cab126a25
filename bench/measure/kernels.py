"""Measure one configuration of a JAX variant in this process: compile phases, steady state,
XLA's figures.

:func:`measure` takes a spec (see :mod:`bench.selection`) and returns the measured columns of a
results row; the worker (:mod:`bench.measure.worker`) adds the identifying columns and the
parent the ones derived from the machine's peaks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import catalog
from ..protocol import TimingSettings
from . import timing


def batch_arrays(spec: dict[str, Any], images: np.ndarray, labels: np.ndarray, steps: int = 1):
    """The first ``steps * batch_size`` examples, shaped for one call (``(S, B, ...)`` for scan)."""
    b = int(spec["batch_size"])
    need = steps * b
    if need > images.shape[0]:
        reps = -(-need // images.shape[0])
        images, labels = np.concatenate([images] * reps), np.concatenate([labels] * reps)
    x, y = images[:need], labels[:need]
    if spec["variant"] == "scan":
        return x.reshape(steps, b, -1), y.reshape(steps, b, -1)
    return x, y


def compute_of(spec: dict[str, Any]) -> Any:
    """The model's :class:`~mnist_kernels.matmul.Compute` for ``spec``: its dtype, float32
    matmul precision and weight-gradient layout."""
    from mnist_kernels.matmul import Compute

    precision = spec.get("precision") or "highest"
    return Compute(
        spec["dtype"],
        "highest" if precision not in catalog.PRECISIONS else precision,
        spec.get("grad_layout") or (catalog.layouts_of(spec["variant"]) or ("tuned",))[0],
    )


def analytic_flops(spec: dict[str, Any], work_multiplier: int) -> float:
    """Matmul FLOPs of one SGD step (or one predict call), all ensemble members included."""
    sizes, b = list(spec["layer_sizes"]), int(spec["batch_size"])
    count = catalog.flops_update if spec["kernel"] == "update" else catalog.flops_forward
    return float(count(sizes, b) * work_multiplier)


def devices_for(spec: dict[str, Any]) -> list[Any]:
    import jax

    backend = spec["backend"]
    devs = jax.devices(backend)
    n = int(spec["n_devices"])
    if n > len(devs):
        raise ValueError(
            f"{n} {backend} devices asked for but this process has {len(devs)}; "
            "on CPU set XLA_FLAGS=--xla_force_host_platform_device_count or lower --devices"
        )
    return devs[:n]


def compile_cold(fn: Any, args: tuple[Any, ...]) -> tuple[Any, dict[str, float | None]]:
    """``fn`` compiled ahead of time from cold caches, with the phases timed."""
    import jax

    if hasattr(fn, "trace"):
        return timing.aot_compile(fn, *args)
    # jax.pmap objects have lower() only: tracing is inside lower_s
    jax.clear_caches()
    t0 = timing.clock()
    lowered = fn.lower(*args)
    t1 = timing.clock()
    compiled = lowered.compile()
    return compiled, {"trace_s": None, "lower_s": t1 - t0, "compile_s": timing.clock() - t1}


def _global_facts(compiled: Any, spec: dict[str, Any], n_devices: int) -> dict[str, Any]:
    """XLA's figures of ``compiled`` over every device of the configuration."""
    facts = timing.compiled_facts(compiled)
    scale = n_devices if catalog.is_multi_device(spec["variant"]) else 1
    for key in ("xla_flops", "bytes_accessed"):
        if facts[key] is not None:
            # a partitioned module's cost analysis is per device. XLA counts a loop body once,
            # whatever the trip count: scan's figure is already one step's worth, so it is not
            # divided by the steps per call.
            facts[key] = facts[key] * scale
    return facts


#: calls of a multi-device CPU program in flight at most: XLA:CPU's collective rendezvous
#: deadlocks when many steps are queued at once (here, 4 fake devices on 2 cores: 64 queued
#: steps hang, 32 do not; the all-reduce waits for a device thread that never joins, and XLA
#: aborts after 40 s). One in 8 calls waits for its result; the rest stay pipelined, as on one
#: device, so both are timed by the same protocol and the dispatch overhead shows.
MAX_IN_FLIGHT = 8


def _timed_call(spec: dict[str, Any], kernel: Any, params: Any, batch: Any, bound: int | None):
    """The call the steady state repeats: ``state -> state`` (an update threads the params);
    with ``bound``, every ``bound``-th call waits for its result."""
    import jax

    calls = [0]

    def settle(out: Any) -> Any:
        calls[0] += 1
        return jax.block_until_ready(out) if bound and calls[0] % bound == 0 else out

    update = lambda p: kernel.update(p, batch)  # noqa: E731
    predict = lambda _: kernel.predict(params, batch)  # noqa: E731
    step = slowed(update if spec["kernel"] == "update" else predict, spec.get("slowdown"))
    return lambda state: settle(step(state))


def slowed(step: Callable[[Any], Any], slowdown: float | None) -> Callable[[Any], Any]:
    """``step``, called ``slowdown`` times per call on average (bench validate's injected
    regression, protocol field ``slowdown``): once, and once more whenever the owed share of
    an extra call reaches one. The same kernel, the same dispatch, ``slowdown`` times as often."""
    extra = float(slowdown or 1.0) - 1.0
    if extra <= 0:
        return step
    counts = [0, 0]  # calls, extra calls made

    def call(state: Any) -> Any:
        state = step(state)
        counts[0] += 1
        due = int(counts[0] * extra + 1e-9)  # extra calls owed so far (1e-9: 0.2 * 10 is 2)
        while counts[1] < due:
            counts[1] += 1
            state = step(state)
        return state

    return call


def _steady(call: Callable[[Any], Any], state: Any, settings: TimingSettings):
    """Steady-state figures of ``call`` from ``state``, with the compiles seen meanwhile."""
    import jax

    # The first call through the user-facing function may compile once more (pmap's cache is
    # not filled by AOT); steady state starts after it, and from there nothing may compile.
    state = call(state)
    jax.block_until_ready(state)
    with timing.CompileCounter.counting() as counter:
        # that call was the first warm-up: it compiled whatever jit's cache still lacked
        warm = dataclasses.replace(settings, warmup_calls=max(settings.warmup_calls, 2))
        figures, state = timing.steady_state(call, jax.block_until_ready, state, warm)
    jax.block_until_ready(state)
    return figures, counter.count


def prepare(spec: dict[str, Any], images: np.ndarray, labels: np.ndarray, devices: list[Any]):
    """What ``spec`` times, placed on ``devices``: ``(kernel, fn, params, batch, steps)``, where
    ``fn(params, batch)`` is the function compiled and called (the update or predict) and
    ``steps`` the SGD steps one call makes."""
    import jax

    from mnist_kernels import model, variants

    compute = compute_of(spec)
    compiled_with = spec.get("compile_options") or catalog.STANDARD_COMPILE
    xla_options = catalog.compiler_options(compiled_with, devices[0].platform)
    if xla_options is None:
        raise ValueError(f"{compiled_with} has no compile options for {devices[0].platform}")
    kernel = variants.get(
        spec["variant"],
        lr=spec.get("lr", 0.001),
        devices=devices,
        dtype=compute.dtype,
        precision=compute.precision,
        layout=compute.layout,
        compiler_options=xla_options or None,
        **(spec.get("options") or {}),
    )
    steps = kernel.steps_per_call if spec["kernel"] == "update" else 1
    x, y = batch_arrays(spec, images, labels, steps)
    params0 = model.init_params(list(spec["layer_sizes"]))  # host arrays: safe to donate copies
    if spec["kernel"] == "update":
        params, batch = kernel.place(params0, (x, y))
        fn = kernel.update_fn
    else:
        params, _ = kernel.place(params0, (x, y))
        batch = kernel.place_inputs(x)
        fn = kernel.predict_fn
    jax.block_until_ready((params, batch))
    return kernel, fn, params, batch, steps


def measure(
    spec: dict[str, Any],
    images: np.ndarray,
    labels: np.ndarray,
    settings: TimingSettings,
    *,
    devices: list[Any] | None = None,
) -> dict[str, Any]:
    """Measure one JAX configuration (``spec``: see :mod:`bench.selection`)."""
    import jax

    devices = devices if devices is not None else devices_for(spec)
    memory_before = memory_in_use(devices)
    kernel, fn, params, batch, steps = prepare(spec, images, labels, devices)

    timing.phase("compiling")
    compiled, phases = timing.cold_compiles(
        lambda: compile_cold(fn, (params, batch)), settings.compile_repeats
    )
    facts = _global_facts(compiled, spec, len(devices))
    timing.phase("first call")
    t0 = timing.clock()
    out = compiled(params, batch)
    jax.block_until_ready(out)
    first_call_s = timing.clock() - t0
    timing.phase("steps")

    bounded = devices[0].platform == "cpu" and len(devices) > 1
    call = _timed_call(spec, kernel, params, batch, MAX_IN_FLIGHT if bounded else None)
    figures, recompiles = _steady(call, out, settings)
    return {
        **phases,
        "first_call_s": first_call_s,
        **timing.per_step(figures, steps),
        **facts,
        "steps_per_call": steps,
        "work_multiplier": kernel.work_multiplier,
        "flops": analytic_flops(spec, kernel.work_multiplier),
        "recompiles": recompiles,
        "device_peak_bytes_in_use": own_peak_bytes(devices, memory_before),
        "device_kind": devices[0].device_kind,
        "options": {**kernel.options, **({"max_in_flight": MAX_IN_FLIGHT} if bounded else {})},
    }


def warm_compile(backend: str | None = None) -> dict[str, float | None]:
    """Compile a small update and predict through the same ahead-of-time path as a measured
    configuration, so that one-time costs (the compiler's own start-up, the first lowering)
    are paid here rather than by the first configuration a worker measures; the phases."""
    import jax

    from mnist_kernels import model, variants

    devices = jax.devices(backend)[:1] if backend else jax.devices()[:1]
    kernel = variants.get("jit", devices=devices)
    x = np.zeros((8, 784), np.float32)
    y = np.zeros((8, 10), np.float32)
    params, batch = kernel.place(model.init_params([784, 16, 10]), (x, y))
    compile_cold(kernel.predict_fn, (params, batch[0]))
    _, phases = compile_cold(kernel.update_fn, (params, batch))
    jax.clear_caches()
    return phases


def memory_in_use(devices: list[Any]) -> list[tuple[int, int]] | None:
    """``(bytes in use, peak bytes in use)`` of each device, or None where the backend does
    not keep them (the CPU)."""
    out = []
    for d in devices:
        try:
            s = d.memory_stats()
        except Exception:
            return None
        if not s or "peak_bytes_in_use" not in s:
            return None
        out.append((int(s.get("bytes_in_use", 0)), int(s["peak_bytes_in_use"])))
    return out


def own_peak_bytes(devices: list[Any], before: list[tuple[int, int]] | None) -> int | None:
    """The most device memory this configuration used above what was in use before it: the
    allocator's peak never resets, so it is this configuration's only where it rose during it
    (then ``peak - in use before``); None where it did not, or the backend keeps no count."""
    after = memory_in_use(devices)
    if before is None or after is None:
        return None
    own = []
    for (in_use, peak), (_, new_peak) in zip(before, after, strict=True):
        if new_peak <= peak:
            return None  # an earlier configuration's peak: not this one's
        own.append(new_peak - in_use)
    return max(own)
