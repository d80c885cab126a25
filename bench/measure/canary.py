"""The canary: a fixed reference workload the worker times before and after every
configuration, so that a measurement taken while the machine was slow (another job, a slow spell
of a shared host) is seen and can be redone, or marked, instead of becoming a result.

Its time is compared with the best this worker has seen: ``ratio = time / best`` is 1 on a
machine as quick as it gets and grows with the slow-down. The parent decides what to do with
it (:class:`bench.runner.loop.RetryPolicy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: the canary's matmul size: about half a millisecond of float32 work on one CPU core
SIZE = 384
#: synced runs per check; the fastest counts (a check is a best case, like a peak)
REPS = 5


class Canary:
    """Times a fixed jitted workload; ``ratio()`` says how slow it ran against its best.

    Args:
      run: the workload, returning once it is done (default: a ``SIZE`` x ``SIZE`` float32
        matmul and tanh on this process's default JAX device, synced).
      clock: the timer (seconds).
    """

    def __init__(
        self, run: Callable[[], Any] | None = None, clock: Callable[[], float] | None = None
    ):
        import time

        self.run = run or _workload()
        self.clock = clock or time.perf_counter
        self.best = math.inf
        self.run()  # compile and warm up

    def time(self) -> float:
        """The workload's fastest time of ``REPS`` runs (seconds)."""
        best = math.inf
        for _ in range(REPS):
            t0 = self.clock()
            self.run()
            best = min(best, self.clock() - t0)
        return best

    def ratio(self) -> float:
        """This check's time over the best so far (the best is updated first): 1 when the
        machine is as quick as it has been, 1.5 when the canary took half as long again."""
        t = self.time()
        self.best = min(self.best, t)
        return t / self.best


def _workload() -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    x = jax.device_put(np.random.RandomState(0).rand(SIZE, SIZE).astype(np.float32) / SIZE)
    f = jax.jit(lambda a: jnp.tanh(a @ a))
    return lambda: jax.block_until_ready(f(x))
