"""How one callable is timed: ahead-of-time compile phases, then calibrated steady-state samples.

Framework-neutral: the steady-state part takes a ``call`` and a ``sync`` function, so the JAX
kernels and the peers (PyTorch, NumPy) are measured by the same code.

A *sample* is ``k`` calls followed by one ``sync`` of the last result; ``k`` (``loops``) is
calibrated so that one sample lasts at least ``min_sample_s``, well above the timer's resolution.
Samples are taken until ``budget_s`` is spent and at least ``min_samples`` exist. A second set
of samples syncs after every call (``k = 1``): the difference of the two per-call medians is
the dispatch overhead that pipelining hides. When one call already lasts a sample (``k = 1``),
the samples are synced after every call and serve as both sets: the overhead is then zero.
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..protocol import TimingSettings
from ..results.samples import per_step as per_step
from ..results.samples import summarize, summarize_compiles
from . import hlo

clock = time.perf_counter


def _timed(call: Callable[[Any], Any], sync: Callable[[Any], Any], state: Any, k: int):
    t0 = clock()
    for _ in range(k):
        state = call(state)
    sync(state)
    return clock() - t0, state


def calibrate(call, sync, state, min_sample_s: float, max_loops: int = 1 << 20):
    """Smallest power of two ``k`` whose sample lasts at least ``min_sample_s``."""
    k = 1
    while True:
        elapsed, state = _timed(call, sync, state, k)
        if elapsed >= min_sample_s or k >= max_loops:
            return k, state
        # jump close to the target, then keep doubling
        k = min(
            max_loops, max(2 * k, 1 << int(np.ceil(np.log2(min_sample_s / max(elapsed, 1e-9) * k))))
        )


def steady_state(
    call: Callable[[Any], Any],
    sync: Callable[[Any], Any],
    state: Any,
    settings: TimingSettings | None = None,
) -> tuple[dict[str, Any], Any]:
    """Time ``state = call(state)`` in the steady state.

    ``call`` must be the operation to time and return the next state (for an SGD update, the new
    params; for predict, anything that ``sync`` can wait on); ``sync(state)`` must block until
    the work behind ``state`` is done (``jax.block_until_ready``, ``torch.cuda.synchronize``).

    Returns ``(figures, state)``: figures are per call, in seconds, with the raw samples
    (``samples_s``: per-call times of the pipelined samples; ``sync_samples_s``: one call each).
    """
    s = settings or TimingSettings()
    last = 0.0
    for i in range(s.warmup_calls):
        last, state = _timed(call, sync, state, 1)
        if i > 0 and last >= s.slow_call_s:  # the first may have compiled; this one is warm
            break
    if s.warmup_calls > 1 and last >= s.min_sample_s:
        loops = 1  # one call already lasts a sample: no calibration needed
    else:
        loops, state = calibrate(call, sync, state, s.min_sample_s)
    samples: list[float] = []
    start = clock()
    while len(samples) < s.max_samples and (
        len(samples) < s.min_samples or clock() - start < s.budget_s
    ):
        elapsed, state = _timed(call, sync, state, loops)
        samples.append(elapsed / loops)
    if loops == 1:
        # the samples above already synced after every call: they are the synced samples
        return summarize(samples, list(samples), loops), state
    sync_samples: list[float] = []
    start = clock()
    while len(sync_samples) < s.max_sync_samples and (
        len(sync_samples) < s.min_sync_samples or clock() - start < s.sync_budget_s
    ):
        elapsed, state = _timed(call, sync, state, 1)
        sync_samples.append(elapsed)
    return summarize(samples, sync_samples, loops), state


# --- JAX specifics --------------------------------------------------------------------------


def aot_compile(fn: Any, *args: Any) -> tuple[Any, dict[str, float]]:
    """``fn.trace(*args).lower().compile()`` with every phase timed, from cold caches.

    Clears JAX's in-memory caches first; the caller keeps the persistent compilation cache off
    (``jax_enable_compilation_cache=False``) so ``compile_s`` is a real compile.
    """
    import jax

    jax.clear_caches()
    t0 = clock()
    traced = fn.trace(*args)
    t1 = clock()
    lowered = traced.lower()
    t2 = clock()
    compiled = lowered.compile()
    t3 = clock()
    return compiled, {"trace_s": t1 - t0, "lower_s": t2 - t1, "compile_s": t3 - t2}


def cold_compiles(
    compile_once: Callable[[], tuple[Any, dict[str, float | None]]], repeats: int
) -> tuple[Any, dict[str, Any]]:
    """``compile_once()`` (a compile from cold caches with its phases timed, like
    :func:`aot_compile`) ``repeats`` times: the last executable, and the compile columns of a
    row (:func:`bench.results.samples.summarize_compiles`: each phase's median, the cold
    compile's median with its interval, the raw samples)."""
    runs = []
    compiled = None
    for _ in range(max(1, int(repeats))):
        compiled = None  # the previous executable is freed before the next compile
        compiled, phases = compile_once()
        runs.append(phases)
    return compiled, summarize_compiles(runs)


def compiled_facts(compiled: Any) -> dict[str, Any]:
    """What XLA says about a compiled executable: cost, memory and optimized-HLO counts.

    Every figure is ``None`` where the backend does not provide it.
    """
    facts: dict[str, Any] = {
        "xla_flops": None,
        "bytes_accessed": None,
        "peak_memory_bytes": None,
        "hlo_ops": None,
        "hlo_fusions": None,
        "launches_per_call": None,
    }
    with contextlib.suppress(Exception):
        cost = compiled.cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        if cost:
            flops = cost.get("flops")
            facts["xla_flops"] = float(flops) if flops is not None and flops >= 0 else None
            nbytes = cost.get("bytes accessed")
            facts["bytes_accessed"] = float(nbytes) if nbytes is not None and nbytes >= 0 else None
    with contextlib.suppress(Exception):
        mem = compiled.memory_analysis()
        if mem is not None:
            facts["peak_memory_bytes"] = int(
                mem.argument_size_in_bytes
                + mem.output_size_in_bytes
                + mem.temp_size_in_bytes
                - mem.alias_size_in_bytes
            )
    with contextlib.suppress(Exception):
        text = compiled.as_text()
        facts.update(hlo.counts(text))
        facts["launches_per_call"] = hlo.launches(text)
    return facts


#: what this process is doing in the configuration being measured, in order; a distributed
#: run's watchdog names it, so the launcher can tell the process that stopped from those
#: waiting for it in a collective
PHASES = ("preparing", "compiling", "first call", "steps")
_phase = {"now": PHASES[0]}


def phase(name: str | None = None) -> str:
    """Set (with ``name``) and return the phase of the current measurement."""
    if name is not None:
        assert name in PHASES, name
        _phase["now"] = name
    return _phase["now"]


class CompileCounter:
    """Counts backend compiles reported through ``jax.monitoring`` while active."""

    _lock = threading.Lock()
    _active: typing.ClassVar[list[CompileCounter]] = []
    _registered = False

    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def _listener(cls, event: str, duration: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            with cls._lock:
                for counter in cls._active:
                    counter.count += 1

    @classmethod
    @contextlib.contextmanager
    def counting(cls) -> Iterator[CompileCounter]:
        import jax

        with cls._lock:
            if not cls._registered:
                jax.monitoring.register_event_duration_secs_listener(cls._listener)
                cls._registered = True
            counter = cls()
            cls._active.append(counter)
        try:
            yield counter
        finally:
            with cls._lock:
                cls._active.remove(counter)
