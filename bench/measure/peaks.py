"""The machine's limits, measured in the worker: the matmul FLOP/s of a large square matmul per
dtype and the memory bandwidth (a copy and a reduction), each the best of synced repetitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import timing


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
