"""Where the [784, 10] step's time goes on this CPU: its two dots in every library here, and the
ways tried to put both cores on them.

Run from the repository root (PyTorch installed, nothing else running)::

    python docs/limits/thin_dots_evidence.py > docs/limits/thin-dots-cpu-2c-epyc.md

1. **The dots alone**, at batch 128 and 4096, operands in cache, best of repeated calls: XLA's
   fastest form (``bench.measure.ceilings``, the run's own ceiling), NumPy's BLAS and PyTorch,
   each timed the way it runs fastest (XLA in a compiled loop, the others in a Python loop).
2. **Both cores**: the [784, 10] update and predict at batch 4096 as the suite runs them, against
   the same step with the batch split in two halves whose dots XLA:CPU can run at once (the
   halves as separate arrays, so no slice is copied), with and without YNNPACK's fusions.
3. **In the fused epoch**: the epoch's step taken apart (the batch's gather and conversion, with a
   sum over it so that it is not optimised away; the forward dot added; the whole update), each
   a whole epoch in one compiled call.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import numpy as np

NO_YNN = {"xla_cpu_experimental_ynn_fusion_type": ""}


def best_of(fn: Any, sync: Any, reps: int = 7, inner: int = 1) -> float:
    sync(fn())
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn()
        sync(out)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def dots_alone() -> str:
    import torch

    from bench.measure.ceilings import measure_thin_ceilings

    lines = [
        "| batch | dot | XLA (fastest form) | NumPy | PyTorch |",
        "|---|---|---|---|---|",
    ]
    xla = measure_thin_ceilings("cpu", [128, 4096])
    rng = np.random.RandomState(0)
    for b in (128, 4096):
        x = rng.rand(b, 784).astype(np.float32)
        w = rng.rand(784, 10).astype(np.float32)
        g = rng.rand(b, 10).astype(np.float32)
        xt, wt, gt = (torch.from_numpy(a.copy()) for a in (x, w, g))
        inner = 200 if b == 128 else 10
        np_fwd = best_of(lambda x=x, w=w: x @ w, lambda r: r, inner=inner)
        np_wg = best_of(lambda x=x, g=g: g.T @ x, lambda r: r, inner=inner)
        t_fwd = best_of(lambda xt=xt, wt=wt: xt @ wt, lambda r: r, inner=inner)
        t_wg = best_of(lambda xt=xt, gt=gt: gt.T @ xt, lambda r: r, inner=inner)
        entry = xla[str(b)]
        for name, key, n, t in (
            ("forward", "forward", np_fwd, t_fwd),
            ("weight grad", "weight_grad", np_wg, t_wg),
        ):
            lines.append(
                f"| {b} | {name} | {entry[key + '_s'] * 1e6:.1f} µs ({entry[key + '_form']}) | "
                f"{n * 1e6:.1f} µs | {t * 1e6:.1f} µs |"
            )
    return "\n".join(lines)


def both_cores() -> str:
    import jax
    import jax.numpy as jnp

    from mnist_kernels import model

    rng = np.random.RandomState(0)
    b = 4096
    x = rng.rand(b, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(10, size=b)]
    h = b // 2
    whole = [jax.device_put(a) for a in (x, y)]
    halves = [jax.device_put(a) for a in (x[:h], x[h:], y[:h], y[h:])]
    p = jax.device_put(model.init_params([784, 10]))
    lines = [
        "| kernel, batch 4096 | compile options | one batch | two halves | halves / one |",
        "|---|---|---|---|---|",
    ]
    for options in (None, NO_YNN):
        name = "no-ynnpack" if options else "standard"
        upd = jax.jit(functools.partial(model.update, lr=0.001), compiler_options=options)

        def upd_halves(p, xa, xb, ya, yb):
            # the model's gradient of each half (independent dots), averaged: the same step
            ga = jax.grad(model.loss)(p, (xa, ya))
            gb = jax.grad(model.loss)(p, (xb, yb))
            return model.sgd(p, jax.tree.map(lambda a, c: (a + c) / 2, ga, gb), 0.001)

        split = jax.jit(upd_halves, compiler_options=options)
        pred = jax.jit(model.predict, compiler_options=options)
        pred_h = jax.jit(
            lambda p, xa, xb: jnp.concatenate([model.predict(p, xa), model.predict(p, xb)]),
            compiler_options=options,
        )
        ready = jax.block_until_ready
        for got, want in zip(
            jax.tree.leaves(split(p, *halves)), jax.tree.leaves(upd(p, tuple(whole))), strict=True
        ):  # the same step
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
        t1 = best_of(lambda upd=upd: upd(p, tuple(whole)), ready, inner=20)

        t2 = best_of(lambda split=split: split(p, *halves), ready, inner=20)
        lines.append(f"| update | {name} | {t1 * 1e3:.3f} ms | {t2 * 1e3:.3f} ms | {t2 / t1:.2f} |")
        t1 = best_of(lambda pred=pred: pred(p, whole[0]), ready, inner=20)
        t2 = best_of(lambda pred_h=pred_h: pred_h(p, halves[0], halves[1]), ready, inner=20)
        lines.append(
            f"| predict | {name} | {t1 * 1e3:.3f} ms | {t2 * 1e3:.3f} ms | {t2 / t1:.2f} |"
        )
    return "\n".join(lines)


def in_the_epoch() -> str:
    import jax
    import jax.numpy as jnp
    from jax import lax

    from mnist_kernels import data, epoch, model
    from mnist_kernels.matmul import Compute

    images, labels, _, _ = data.load_dataset("fashion-mnist", download=False, n_test=1)
    pixels, classes = (jax.device_put(a) for a in data.stored_form(images, labels))
    n, b = images.shape[0], 128
    (perm,) = epoch.epoch_permutations(n, 1)
    perm = jax.device_put(perm.astype(np.int32))
    hi = lax.Precision.HIGHEST

    def make(kind: str, options: Any) -> Any:
        def run(params, pixels, classes, perm):
            def body(p, i):
                idx = lax.dynamic_slice_in_dim(perm, i * b, b)
                x, y = epoch._batch(pixels, classes, idx)
                ((w, bias),) = p
                if kind == "gather and convert":
                    return [(w + 1e-30 * jnp.sum(x, 0)[:, None], bias)], None

                if kind == "+ forward dot":
                    return [(w.at[0].add(1e-30 * jnp.dot(x, w, precision=hi)[0]), bias)], None
                return model.update(p, (x, y), 0.001, Compute()), None

            return lax.scan(body, params, jnp.arange(n // b))[0]

        return jax.jit(run, donate_argnums=0, compiler_options=options)

    lines = ["| epoch step, [784, 10], batch 128 | standard | no-ynnpack |", "|---|---|---|"]
    for kind in ("gather and convert", "+ forward dot", "the whole update"):
        cells = []
        for options in (None, NO_YNN):
            fn = make(kind, options)

            def once(fn=fn):
                return fn(jax.device_put(model.init_params([784, 10])), pixels, classes, perm)

            t = best_of(once, jax.block_until_ready, reps=5)
            cells.append(f"{t / (n // b) * 1e6:.1f} µs a step")
        lines.append(f"| {kind} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    import jax

    print("# The [784, 10] step's dots on this CPU\n")
    print(
        f"JAX {jax.__version__}, {os.cpu_count()} CPUs; `python docs/limits/thin_dots_evidence.py`.\n"
    )
    print(f"## The dots alone\n\n{dots_alone()}\n")
    print(f"## Both cores on one step\n\n{both_cores()}\n")
    print(f"## The fused epoch's step taken apart\n\n{in_the_epoch()}\n")


if __name__ == "__main__":
    main()
