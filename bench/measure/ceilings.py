"""The ceiling of a thin network's step at its own dot shapes, measured in the run.

A ``[784, 10]`` step is two dots with 10 outputs: the forward ``x @ w`` (``B x 784`` by
``784 x 10``) and the weight gradient (``10 x B`` by ``B x 784``, or its stock form). A large
square matmul's FLOP/s (the run's peak) is out of reach for such shapes, so a bound built on it
says nothing about how close the step is to what the machine can do. Here each dot is timed
alone, at the step's shapes, in every form the model can run it in (its layouts) and under
every named set of XLA compile options for the backend that aims at step time
(:data:`bench.catalog.STEP_TIME_OPTIONS`); the fastest form of each is the ceiling. Each is
timed inside one compiled ``lax.scan`` of many dots, operands in cache, with a loop-carried
dependence so that no dot is hoisted; the same loop without the dot is timed too and taken off
(the ceiling is the dot's, not the loop's). A program two sets compile alike (the same optimized
HLO: ``ynnpack-dots`` changes nothing for a dot alone) is timed once.


Returned per batch size: the seconds of the fastest forward and weight-gradient dot, which
form and compile options gave each, and ``ceiling_flops_per_s``, the FLOP/s of the two
together (an update does both; a predict only the forward: see :mod:`bench.results.rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import catalog
from . import timing

#: the thin network whose dot shapes are measured (``[784, 10]``).
THIN_LAYERS = catalog.LOGREG
#: dots a timed loop runs, at least, and about how many multiply-adds it aims at
_MIN_ITERATIONS = 16
_LOOP_MACS = 2e8


def thin_flops(batch_size: int) -> int:
    """FLOPs of one of the two dots of a ``[784, 10]`` step at ``batch_size``: its forward."""
    return catalog.flops_forward(THIN_LAYERS, batch_size)


def _forms() -> dict[str, dict[str, Callable[..., Any]]]:
    """The dots, in each form the model runs them in: ``forward`` ``(x, w)`` and
    ``weight_grad`` ``(x, g)``."""
    import jax.numpy as jnp
    from jax import lax

    from mnist_kernels.matmul import transposed

    hi = lax.Precision.HIGHEST

    def barrier_t(a: Any) -> Any:
        return lax.optimization_barrier(a).T

    return {
        "forward": {"x @ w": lambda x, w: jnp.dot(x, w, precision=hi)},
        "weight_grad": {
            "stock x.T @ g": lambda x, g: jnp.dot(x.T, g, precision=hi),
            "tuned (g.T @ x).T": lambda x, g: barrier_t(jnp.dot(g.T, x, precision=hi)),
            "packed (g.T @ x).T": lambda x, g: barrier_t(jnp.dot(transposed(g), x, precision=hi)),
        },
    }


def _loop(dot: Callable[..., Any] | None, iterations: int, options: dict[str, Any]) -> Any:
    """``iterations`` dots of ``dot(a, b)`` in one compiled loop; ``b`` (the small operand)
    carries a dependence on every result (``None``: the loop alone, the same carry without
    the dot)."""
    import jax
    from jax import lax

    def run(a: Any, b: Any) -> Any:
        def body(carry: Any, _: Any) -> tuple[Any, None]:
            nudge = carry[0, 0] if dot is None else dot(a, carry)[0, 0]
            return carry.at[0, 0].add(1e-30 * nudge), None

        return lax.scan(body, b, None, length=iterations)[0]

    return jax.jit(run, compiler_options=options or None)


def _best_seconds(fn: Any, a: Any, b: Any, reps: int) -> float:
    import jax

    jax.block_until_ready(fn(a, b))  # compile and warm up
    best = float("inf")
    for _ in range(reps):
        t0 = timing.clock()
        jax.block_until_ready(fn(a, b))
        best = min(best, timing.clock() - t0)
    return best


def _seconds(fn: Any, a: Any, b: Any, reps: int, timed: dict[str, float]) -> float:
    """:func:`_best_seconds` of ``fn`` compiled for ``a, b``; a program already in ``timed``
    (keyed by its optimized HLO: two sets may compile the same one) is not timed again."""
    compiled = fn.lower(a, b).compile()
    hlo = compiled.as_text()
    if hlo not in timed:
        timed[hlo] = _best_seconds(compiled, a, b, reps)
    return timed[hlo]


def measure_thin_ceilings(
    backend: str, batch_sizes: list[int], *, quick: bool = False
) -> dict[str, dict[str, Any]]:
    """The ceiling of the ``[784, 10]`` step's dots at each batch size (see the module
    docstring): ``{str(batch): {forward_s, forward_form, weight_grad_s, weight_grad_form,
    ceiling_flops_per_s, iterations}}``."""
    import jax

    dev = jax.devices(backend)[0]
    option_sets = {
        name: catalog.compiler_options(name, backend) for name in catalog.STEP_TIME_OPTIONS
    }
    option_sets = {k: v for k, v in option_sets.items() if v is not None}
    fan_in, fan_out = THIN_LAYERS
    rng = np.random.RandomState(0)
    reps = 3 if quick else 5
    out: dict[str, dict[str, Any]] = {}
    for b in sorted(set(int(x) for x in batch_sizes)):
        iterations = max(_MIN_ITERATIONS, int(_LOOP_MACS // (b * fan_in * fan_out)))
        x = jax.device_put(rng.rand(b, fan_in).astype(np.float32), dev)
        second = {
            "forward": jax.device_put(0.1 * rng.rand(fan_in, fan_out).astype(np.float32), dev),
            "weight_grad": jax.device_put(rng.rand(b, fan_out).astype(np.float32), dev),
        }
        entry: dict[str, Any] = {"iterations": iterations}
        timed: dict[str, float] = {}  # optimized HLO -> seconds: a program is timed once
        for dot_name, forms in _forms().items():
            best = (float("inf"), "")
            b_op = second[dot_name]
            for set_name, options in option_sets.items():
                empty = _seconds(_loop(None, iterations, options), x, b_op, reps, timed)
                for form, dot in forms.items():
                    t = _seconds(_loop(dot, iterations, options), x, b_op, reps, timed)
                    per_dot = max(t - empty, 1e-12) / iterations
                    if per_dot < best[0]:
                        best = (per_dot, f"{form}, {set_name}")
            entry[f"{dot_name}_s"], entry[f"{dot_name}_form"] = best
        total = entry["forward_s"] + entry["weight_grad_s"]
        entry["ceiling_flops_per_s"] = 2 * thin_flops(b) / total
        out[str(b)] = entry
    return out
