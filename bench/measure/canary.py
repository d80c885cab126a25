"""The canary: a fixed reference workload the worker times before and after every
configuration, so that a measurement taken while the machine was slow (another job, a slow spell
of a shared host) is seen and can be redone, or marked, instead of becoming a result.

A check times the workload in windows of ``WINDOW_RUNS`` back-to-back runs (a window, a few
milliseconds, spans scheduler slices, so a competing process slows every window it shares the
CPUs with) and keeps the quickest window. It stops at the first window within ``QUIET`` of the
best this worker has seen, else after ``SETTLE_S``: the worker's own libraries' threads, which
spin for a while after a configuration (OpenBLAS's, PyTorch's OpenMP pool), have stopped by then
and are waited out rather than reported, while a slow spell lasts the whole check and is.

Its time is compared with the best this worker has seen: ``ratio = time / best`` is 1 on a
machine as quick as it gets and grows with the slow-down. The parent decides what to do with
it (:class:`bench.runner.loop.RetryPolicy`). Measured here (2 cores, idle): ratios 1.00–1.15 in
quiet checks and after PyTorch, NumPy and JAX work; 1.2–3.0 with two or three busy processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: the canary's matmul size: about half a millisecond of float32 work on one CPU core
SIZE = 384
#: runs per window: a few milliseconds, several scheduler slices
WINDOW_RUNS = 8
#: a check ends at the first window within this factor of the best so far
QUIET = 1.15
#: or after this long (seconds), reporting its quickest window
SETTLE_S = 0.25


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
        self.run()  # compile and warm up
        self.best = math.inf
        self.best = self.time(settle=True)  # the first best: every window of a full check

    def time(self, settle: bool = False) -> float:
        """The quickest window's time per run (seconds), over windows until one is within
        ``QUIET`` of the best (unless ``settle``) or ``SETTLE_S`` has passed."""
        quickest = math.inf
        start = self.clock()
        while True:
            t0 = self.clock()
            for _ in range(WINDOW_RUNS):
                self.run()
            end = self.clock()
            quickest = min(quickest, (end - t0) / WINDOW_RUNS)
            if (not settle and quickest <= QUIET * self.best) or end - start >= SETTLE_S:
                return quickest

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
