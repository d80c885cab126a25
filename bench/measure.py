"""Measure one configuration in this process: compile phases, steady state, XLA's figures.

A configuration (a *spec*) is a plain dict so it can cross process boundaries::

    {"framework": "jax", "variant": "jit", "kernel": "update", "layer_sizes": [784, 10],
     "batch_size": 128, "dtype": "float32", "n_devices": 1, "backend": "cpu",
     "lr": 0.001, "options": {}}

:func:`measure` returns the measured columns of a results row; the caller (``bench.worker``)
adds the identifying columns and ``bench.sweep`` the ones derived from the machine's peaks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mnist_kernels import model

from . import timing

#: variants whose compiled module is partitioned: XLA's cost analysis is per device.
SPMD_VARIANTS = {"sharded", "shard_map", "sharded_tp", "pmap"}


def batch_arrays(spec: dict[str, Any], images: np.ndarray, labels: np.ndarray, steps: int = 1):
    """The first ``steps * batch_size`` examples, shaped for one call (``(S, B, ...)`` for scan)."""
    b = int(spec["batch_size"])
    # test-only (bench validate): "work_scale": 1.2 runs 20% more examples under the same name
    b = max(1, round(b * float(spec.get("work_scale", 1.0))))
    need = steps * b
    if need > images.shape[0]:
        reps = -(-need // images.shape[0])
        images, labels = np.concatenate([images] * reps), np.concatenate([labels] * reps)
    x, y = images[:need], labels[:need]
    if spec["variant"] == "scan":
        return x.reshape(steps, b, -1), y.reshape(steps, b, -1)
    return x, y


def analytic_flops(spec: dict[str, Any], steps_per_call: int, work_multiplier: int) -> float:
    """Matmul FLOPs of one SGD step (or one predict call), all ensemble members included."""
    sizes, b = list(spec["layer_sizes"]), int(spec["batch_size"])
    per = (
        model.flops_update(sizes, b)
        if spec["kernel"] == "update"
        else model.flops_forward(sizes, b)
    )
    return float(per * work_multiplier)


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


def measure(
    spec: dict[str, Any],
    images: np.ndarray,
    labels: np.ndarray,
    settings: timing.Settings,
    *,
    devices: list[Any] | None = None,
) -> dict[str, Any]:
    """Measure one JAX configuration; see the module docstring for ``spec``."""
    import jax

    from mnist_kernels import variants

    devices = devices if devices is not None else devices_for(spec)
    kernel = variants.get(
        spec["variant"],
        lr=spec.get("lr", 0.001),
        devices=devices,
        dtype=spec["dtype"],
        **(spec.get("options") or {}),
    )
    steps = kernel.steps_per_call
    x, y = batch_arrays(spec, images, labels, steps if spec["kernel"] == "update" else 1)
    params0 = model.init_params(list(spec["layer_sizes"]))  # host arrays: safe to donate copies
    if spec["kernel"] == "update":
        params, batch = kernel.place(params0, (x, y))
        fn, args = kernel.update_fn, (params, batch)
    else:
        if spec["variant"] == "scan":
            raise ValueError("scan fuses SGD steps; its predict is the jit variant's")
        params, _ = kernel.place(params0, (x, y))
        batch = kernel.place_inputs(x)
        fn, args = kernel.predict_fn, (params, batch)
    jax.block_until_ready(args)

    if hasattr(fn, "trace"):
        compiled, phases = timing.aot_compile(fn, *args)
    else:  # jax.pmap objects have lower() only: tracing is inside lower_s
        jax.clear_caches()
        t0 = timing.clock()
        lowered = fn.lower(*args)
        t1 = timing.clock()
        compiled = lowered.compile()
        phases = {"trace_s": None, "lower_s": t1 - t0, "compile_s": timing.clock() - t1}
    facts = timing.compiled_facts(compiled)
    scale = len(devices) if spec["variant"] in SPMD_VARIANTS else 1
    for key in ("xla_flops", "bytes_accessed"):
        if facts[key] is not None:
            # XLA counts a loop body once, whatever the trip count: scan's figure is already
            # one step's worth, so it is not divided by the steps per call.
            facts[key] = facts[key] * scale

    t0 = timing.clock()
    out = compiled(*args)
    jax.block_until_ready(out)
    first_call_s = timing.clock() - t0

    # XLA:CPU's collectives rendezvous deadlocks when many steps of a multi-device program are
    # queued at once (JAX 0.10: the all-reduce waits for a device thread that never joins, and
    # XLA aborts after 40 s). There, every call waits for the previous one to finish.
    lockstep = devices[0].platform == "cpu" and len(devices) > 1

    if spec["kernel"] == "update":
        state = out

        def call(p):
            p = kernel.update(p, batch)
            return jax.block_until_ready(p) if lockstep else p

        sync = jax.block_until_ready
        per_call_steps = steps
    else:
        state = out

        def call(_):
            out = kernel.predict(params, batch)
            return jax.block_until_ready(out) if lockstep else out

        sync = jax.block_until_ready
        per_call_steps = 1

    # The first call through the user-facing function may compile once more (pmap's cache is
    # not filled by AOT); steady state starts after it, and from there nothing may compile.
    state = call(state)
    sync(state)
    with timing.CompileCounter.counting() as counter:
        # that call was the first warm-up: it compiled whatever jit's cache still lacked
        figures, state = timing.steady_state(
            call,
            sync,
            state,
            dataclasses.replace(settings, warmup_calls=max(settings.warmup_calls, 2)),
        )
    jax.block_until_ready(state)

    row = {
        **phases,
        "first_call_s": first_call_s,
        **timing.per_step(figures, per_call_steps),
        **facts,
        "steps_per_call": steps if spec["kernel"] == "update" else 1,
        "work_multiplier": kernel.work_multiplier,
        "flops": analytic_flops(spec, steps, kernel.work_multiplier),
        "recompiles": counter.count,
        "device_peak_bytes_in_use": _device_peak_bytes(devices),
        "device_kind": devices[0].device_kind,
        "options": {**kernel.options, **({"lockstep": True} if lockstep else {})},
    }
    return row


def _device_peak_bytes(devices: list[Any]) -> int | None:
    peaks = []
    for d in devices:
        try:
            s = d.memory_stats()
        except Exception:
            return None
        if not s or "peak_bytes_in_use" not in s:
            return None
        peaks.append(int(s["peak_bytes_in_use"]))
    return max(peaks) if peaks else None


def measure_peaks(backend: str, dtypes: list[str], *, quick: bool = False) -> dict[str, Any]:
    """The machine's limits for ``backend``: large-matmul FLOP/s per dtype and memory bandwidth.

    Returns ``{dtype: {matmul_flops_per_s, bandwidth_bytes_per_s, matmul_n, copy_bytes}}``.
    Best of several synced repetitions (a peak is a best case).
    """
    import jax
    import jax.numpy as jnp

    dev = jax.devices(backend)[0]
    big = backend != "cpu"
    n = (8192 if big else 2048) if not quick else (2048 if big else 1024)
    copy_mb = (1024 if big else 256) if not quick else 64
    out: dict[str, Any] = {}
    copy = jax.jit(lambda a: a * 1.0001)  # one read + one write per element
    total = jax.jit(lambda a: a.reshape(-1, 1024).sum(0))  # one read per element

    copy_elems = copy_mb * 2**20 // 4
    src = jax.device_put(np.ones(copy_elems, np.float32), dev)
    reps = 5 if quick else 10
    # XLA's CPU elementwise loops can run on one core; a reduction reads at full speed. The
    # peak is the best either achieves: bytes a kernel could move per second on this device.
    copy_bw = _best_rate(lambda: copy(src), 2.0 * 4 * copy_elems, reps=reps)
    read_bw = _best_rate(lambda: total(src), 4.0 * copy_elems, reps=reps)
    bw = max(copy_bw, read_bw)
    for dtype in dtypes:
        jd = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
        a = jax.device_put(np.random.RandomState(0).rand(n, n).astype(np.float32), dev).astype(jd)
        mm = jax.jit(lambda u, v: jnp.matmul(u, v, preferred_element_type=jnp.float32))
        out[dtype] = {
            "matmul_flops_per_s": _best_rate(
                lambda mm=mm, a=a: mm(a, a), 2.0 * n**3, reps=3 if quick else 6
            ),
            "bandwidth_bytes_per_s": bw,
            "matmul_n": n,
            "copy_bytes": 4 * copy_elems,
            "copy_bytes_per_s": copy_bw,
            "read_bytes_per_s": read_bw,
        }
    return out


def _best_rate(fn: Any, work: float, reps: int) -> float:
    import jax

    jax.block_until_ready(fn())  # compile and warm up
    best = float("inf")
    for _ in range(reps):
        t0 = timing.clock()
        jax.block_until_ready(fn())
        best = min(best, timing.clock() - t0)
    return work / best
