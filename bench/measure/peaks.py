"""The machine's limits, measured in the worker: the matmul FLOP/s of a large square matmul per
dtype and the memory bandwidth (a copy and a reduction), each the best of synced repetitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import timing
from .launches import measure_launch_cost


def measure_peaks(
    backend: str, keys: list[str], *, quick: bool = False, thin_batches: list[int] = ()
) -> dict[str, Any]:
    """The machine's limits for ``backend``: large-matmul FLOP/s per arithmetic and memory
    bandwidth.

    ``keys`` name the arithmetic (:func:`bench.results.rows.peak_key`): ``float32`` (full
    float32), ``float32:tf32``, ``float32:default`` (the backend's default precision),
    ``bfloat16`` (bfloat16 operands, float32 sums). Returns ``{key: {matmul_flops_per_s,
    bandwidth_bytes_per_s, matmul_n, copy_bytes, ...}}``, each the best of several synced
    repetitions (a peak is a best case). With ``thin_batches``, ``float32`` also holds
    ``thin_dots``: the ceiling of the ``[784, 10]`` step's own dots at each of those batch sizes
    (:mod:`bench.measure.ceilings`), which a 2048-square peak says nothing about. Every key
    also holds ``launch``: the cost of one kernel launch on the device
    (:mod:`bench.measure.launches`).
    """
    import jax

    dev = jax.devices(backend)[0]
    big = backend != "cpu"
    n = (8192 if big else 2048) if not quick else (2048 if big else 1024)
    copy_mb = (1024 if big else 256) if not quick else 64
    copy = jax.jit(lambda a: a * 1.0001)  # one read + one write per element
    total = jax.jit(lambda a: a.reshape(-1, 1024).sum(0))  # one read per element
    copy_elems = copy_mb * 2**20 // 4
    src = jax.device_put(np.ones(copy_elems, np.float32), dev)
    reps = 5 if quick else 10
    # XLA's CPU elementwise loops can run on one core; a reduction reads at full speed. The
    # peak is the best either achieves: bytes a kernel could move per second on this device.
    copy_bw = _best_rate(lambda: copy(src), 2.0 * 4 * copy_elems, reps=reps)
    read_bw = _best_rate(lambda: total(src), 4.0 * copy_elems, reps=reps)
    memory = {
        "bandwidth_bytes_per_s": max(copy_bw, read_bw),
        "copy_bytes": 4 * copy_elems,
        "copy_bytes_per_s": copy_bw,
        "read_bytes_per_s": read_bw,
    }
    out: dict[str, Any] = {}
    for key in keys:
        mm, a = _matmul(key, n, dev)
        rate = _best_rate(lambda mm=mm, a=a: mm(a, a), 2.0 * n**3, reps=3 if quick else 6)
        out[key] = {"matmul_flops_per_s": rate, "matmul_n": n, **memory}
    launch = measure_launch_cost(backend, quick=quick)
    for figures in out.values():
        figures["launch"] = dict(launch)
    if thin_batches and "float32" in out:
        from .ceilings import measure_thin_ceilings

        out["float32"]["thin_dots"] = measure_thin_ceilings(backend, thin_batches, quick=quick)
    return out


def _matmul(key: str, n: int, dev: Any) -> tuple[Any, Any]:
    """The jitted ``n x n`` matmul of the arithmetic ``key`` and its operand on ``dev``."""
    import jax
    import jax.numpy as jnp

    from mnist_kernels.matmul import Compute, matmul

    dtype, _, precision = key.partition(":")
    a = jax.device_put(np.random.RandomState(0).rand(n, n).astype(np.float32), dev)
    if dtype == "bfloat16":
        a = a.astype(jnp.bfloat16)
        return jax.jit(lambda u, v: jnp.matmul(u, v, preferred_element_type=jnp.float32)), a
    compute = Compute("float32", precision or "highest", "stock")
    return jax.jit(lambda u, v: matmul(u, v, compute)), a


def _best_rate(fn: Any, work: float, reps: int) -> float:
    import jax

    jax.block_until_ready(fn())  # compile and warm up
    best = float("inf")
    for _ in range(reps):
        t0 = timing.clock()
        jax.block_until_ready(fn())
        best = min(best, timing.clock() - t0)
    return work / best
