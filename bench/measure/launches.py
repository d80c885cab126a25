"""What launching one kernel costs on a device, measured in the worker.

At a small batch a step's kernels do little work each, and the time goes to launching them:
a step cannot take less than its launches times the cost of one. That cost is measured here
the way a fused step pays it, inside one compiled loop: two loops of tiny dependent kernels
(a sum and a broadcast add over 8 floats, which XLA cannot fuse into one kernel across the
chain), one with few kernels a step and one with many, counted in their optimized HLO
(:func:`bench.measure.hlo.launches`); the difference in time over the difference in launches
is the cost of one launch, the loop's own cost and the call's cancelled out.

A row's launch floor is that cost times the launches its compiled step runs
(:mod:`bench.results.rows`): how fast the step would be if launching were all it did.
"""

from __future__ import annotations

from typing import Any

from . import hlo, timing

#: the chains' lengths (links a loop iteration) and loop iterations
_SHORT, _LONG = 1, 33
_ITERATIONS = 400


def _chain(links: int, iterations: int) -> Any:
    """A jitted loop of ``iterations`` steps, each ``links`` dependent tiny kernels."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def run(x: Any) -> Any:
        def body(c: Any, _: Any) -> tuple[Any, None]:
            for _ in range(links):
                c = c + jnp.sum(c) * 1e-7
            return c, None

        return lax.scan(body, x, None, length=iterations)[0]

    return jax.jit(run)


def _timed(links: int, iterations: int, x: Any, reps: int) -> tuple[float, int]:
    """The best time of ``reps`` synced calls of the chain, and the kernels one call launches."""
    import jax

    compiled = _chain(links, iterations).trace(x).lower().compile()
    count = hlo.launches(compiled.as_text())
    if count is None:
        raise RuntimeError("the launch chain's optimized HLO has a loop of unknown trip count")
    jax.block_until_ready(compiled(x))  # warm up
    best = float("inf")
    for _ in range(reps):
        t0 = timing.clock()
        jax.block_until_ready(compiled(x))
        best = min(best, timing.clock() - t0)
    return best, count


def measure_launch_cost(backend: str, *, quick: bool = False) -> dict[str, Any]:
    """The cost of one kernel launch on ``backend``'s first device (see the module docstring):
    ``{launch_s, launches: [short, long], seconds: [short, long], iterations}``."""
    import jax
    import numpy as np

    dev = jax.devices(backend)[0]
    x = jax.device_put(np.ones(8, np.float32), dev)
    reps = 3 if quick else 7
    iterations = _ITERATIONS // 4 if quick else _ITERATIONS
    short_s, short_n = _timed(_SHORT, iterations, x, reps)
    long_s, long_n = _timed(_LONG, iterations, x, reps)
    if long_n <= short_n:
        raise RuntimeError(
            f"the launch chains compiled to {short_n} and {long_n} kernels: XLA fused the "
            "chain, so the difference measures nothing"
        )
    return {
        "launch_s": max(long_s - short_s, 0.0) / (long_n - short_n),
        "launches": [short_n, long_n],
        "seconds": [short_s, long_s],
        "iterations": iterations,
    }
