"""Where the [784, 10] predict's time goes at batch 4096 on this CPU.

Run from the repository root (nothing else running)::

    python docs/limits/predict_evidence.py > docs/limits/predict-cpu-2c-epyc.md

1. **Taken apart**: the predict as the model computes it (``x @ w + b``, then ``z - logsumexp(z)``,
   the notebook's log-softmax), its dot alone and the dot with the bias, each in one compiled loop
   of predicts on a resident batch (a loop-carried nudge of ``w`` keeps any from being hoisted),
   timed in alternating rounds in one process, under each compile set that aims at step time;
   beside them the bound the targets table uses (the forward dot's ceiling,
   ``bench.measure.ceilings``, and the bytes at the measured bandwidth).
2. **XLA flags**, each a compile option of the same loop: fast math, the fusion emitters off,
   512-bit vectors. Every form and flag gives the same log-probabilities (checked, to 1e-5).
3. **The log-softmax alone**, on a resident ``(4096, 10)`` array, under each of those compile
   sets: which of XLA's kernels (YNNPACK's fusions or XLA's own loops) run its reductions.
4. **The log-softmax's form**: the model's ``z - logsumexp(z)`` (the notebook's) against
   ``jax.nn.log_softmax``, in the predict and in the SGD update at batch 4096 (the model's tuned
   dots, standard compile options, jitted calls back to back, alternating rounds).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

BATCH = 4096
LOOP = 20
ROUNDS = 40


def _loop(f: Any) -> Any:
    import jax.numpy as jnp
    from jax import lax

    def run(params: Any, x: Any) -> Any:
        def body(c: Any, _: Any) -> tuple[Any, None]:
            w, b = params[0]
            out = f([(w + c * 1e-30, b)], x)
            return c + out[0, 0] * 1e-30, None

        return lax.scan(body, jnp.float32(0), None, length=LOOP)[0]

    return run


def main() -> None:
    import jax
    import jax.numpy as jnp
    from jax import lax

    from bench import catalog
    from bench.measure.ceilings import measure_thin_ceilings
    from bench.measure.peaks import measure_peaks
    from mnist_kernels import model
    from mnist_kernels.matmul import Compute

    hi = lax.Precision.HIGHEST
    x = jnp.asarray(np.random.RandomState(0).rand(BATCH, 784).astype(np.float32))
    params = jax.device_put(model.init_params([784, 10]))
    forms = {
        "predict": lambda p, x: model.predict(p, x, Compute()),
        "dot": lambda p, x: jnp.dot(x, p[0][0], precision=hi),
        "dot + bias": lambda p, x: jnp.dot(x, p[0][0], precision=hi) + p[0][1],
    }
    sets = {name: catalog.compiler_options(name, "cpu") for name in catalog.STEP_TIME_OPTIONS}
    flags = {
        "fast math": {"xla_cpu_enable_fast_math": True},
        "fusion emitters off": {"xla_cpu_use_fusion_emitters": False},
        "512-bit vectors": {"xla_cpu_prefer_vector_width": 512},
    }
    ref = jax.jit(forms["predict"])(params, x)
    compiled = {}
    for set_name, options in sets.items():
        for name, f in forms.items():
            compiled[(name, set_name)] = jax.jit(_loop(f), compiler_options=options or None)
    for flag, options in flags.items():
        compiled[("predict", flag)] = jax.jit(_loop(forms["predict"]), compiler_options=options)
        got = jax.jit(forms["predict"], compiler_options=options)(params, x)
        assert float(jnp.max(jnp.abs(got - ref))) < 1e-5, flag
    compiled = {k: fn.lower(params, x).compile() for k, fn in compiled.items()}
    times: dict[Any, list[float]] = {k: [] for k in compiled}
    for fn in compiled.values():
        jax.block_until_ready(fn(params, x))
    for _ in range(ROUNDS):
        for k, fn in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(params, x))
            times[k].append((time.perf_counter() - t0) / LOOP)
    ceiling = measure_thin_ceilings("cpu", [BATCH])[str(BATCH)]
    bandwidth = measure_peaks("cpu", ["float32"], quick=True)["float32"]["bandwidth_bytes_per_s"]
    bound_bytes = 4.0 * (BATCH * (784 + 10) + 7850) / bandwidth
    bound = max(ceiling["forward_s"], bound_bytes)

    print("# The [784, 10] predict at batch 4096 on this CPU\n")
    print(
        f"JAX {jax.__version__}, {os.cpu_count()} CPUs; `python docs/limits/predict_evidence.py`.\n"
    )
    print("## Taken apart\n")
    print(
        f"{ROUNDS} rounds of {LOOP} predicts in one compiled loop each, forms alternating; "
        "medians, and the median over rounds of each form's time over the predict's "
        "(standard) in the same round.\n"
    )
    base = np.array(times[("predict", catalog.STANDARD_COMPILE)])
    print("| form | compile options | a call | / bound | / predict, same round |")
    print("|---|---|---|---|---|")
    for (name, options), ts in times.items():
        if options in sets:
            t = float(np.median(ts))
            paired = float(np.median(np.array(ts) / base))
            print(f"| {name} | {options} | {t * 1e3:.3f} ms | {t / bound:.2f}× | {paired:.2f} |")
    print(
        f"| the bound: forward dot alone ({ceiling['forward_form']}) | | "
        f"{ceiling['forward_s'] * 1e3:.3f} ms | | |"
    )
    print(
        f"| the bound: {BATCH * 794 * 4 / 1e6:.1f} MB at {bandwidth / 1e9:.1f} GB/s | | "
        f"{bound_bytes * 1e3:.3f} ms | | |\n"
    )
    print("## XLA flags\n")
    print("| compile option | predict | / standard, same round |")
    print("|---|---|---|")
    for flag in flags:
        ts = np.array(times[("predict", flag)])
        print(f"| {flag} | {np.median(ts) * 1e3:.3f} ms | {np.median(ts / base):.2f} |")
    log_softmax_alone(sets)
    log_softmax_forms()


def log_softmax_alone(sets: dict[str, Any]) -> None:
    """The model's log-softmax by itself at batch 4096 under each compile set, and which kernels
    run its reductions."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.scipy.special import logsumexp

    z = jnp.asarray(np.random.RandomState(2).randn(BATCH, 10).astype(np.float32))
    loop = 5 * LOOP

    def run(z: Any) -> Any:
        def body(c: Any, _: Any) -> tuple[Any, None]:
            zc = z + c
            out = zc - logsumexp(zc, axis=-1, keepdims=True)
            return c + out[0, 0] * 1e-30, None

        return lax.scan(body, jnp.float32(0), None, length=loop)[0]

    compiled = {
        name: jax.jit(run, compiler_options=options or None).lower(z).compile()
        for name, options in sets.items()
    }
    times: dict[str, list[float]] = {k: [] for k in compiled}
    for fn in compiled.values():
        jax.block_until_ready(fn(z))
    for _ in range(ROUNDS):
        for k, fn in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(z))
            times[k].append((time.perf_counter() - t0) / loop)
    print(
        f"\n## The log-softmax alone\n\n`z - logsumexp(z)` over a resident ({BATCH}, 10) "
        f"array, {ROUNDS} rounds of {loop} in one compiled loop each, sets alternating; "
        "the kernels its reductions run in (from the optimized HLO).\n"
    )
    print("| compile options | a call | reductions run in |")
    print("|---|---|---|")
    for name, fn in compiled.items():
        text = fn.as_text()
        ynn = any("reduce(" in part for part in _ynn_fusions(text))
        where = "YNNPACK fusions" if ynn else "XLA's own loops"
        print(f"| {name} | {np.median(times[name]) * 1e6:.1f} µs | {where} |")


def _ynn_fusions(hlo: str) -> list[str]:
    """The bodies of the computations that YNNPACK fusions call in ``hlo``."""
    import re

    called = set(re.findall(r"calls=%([\w.-]+)[^\n]*__ynn_fusion", hlo))
    bodies = re.split(r"\n(?=%)", hlo)
    return [b for b in bodies if re.match(r"%([\w.-]+) ", b) and b.split()[0][1:] in called]


def log_softmax_forms() -> None:
    """The predict and the update at batch 4096 with each form of the log-softmax."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    from mnist_kernels import model
    from mnist_kernels.matmul import Compute, matmul

    rng = np.random.RandomState(1)
    x = jnp.asarray(rng.rand(BATCH, 784).astype(np.float32))
    y = jax.nn.one_hot(rng.randint(0, 10, BATCH), 10)
    forms = {
        "z - logsumexp(z)": lambda z: z - logsumexp(z, axis=-1, keepdims=True),
        "jax.nn.log_softmax": lambda z: jax.nn.log_softmax(z, axis=-1),
    }

    def kernels(lsm: Any) -> dict[str, Any]:
        def predict(p: Any, x: Any, y: Any) -> Any:
            w, b = p[0]
            return lsm(matmul(x, w, Compute()) + b)

        def update(p: Any, x: Any, y: Any) -> Any:  # the model's loss, the labels an argument
            grads = jax.grad(lambda p: -jnp.mean(jnp.sum(predict(p, x, y) * y, -1)))(p)
            return model.sgd(p, grads, 0.001)

        return {"predict": predict, "update": update}

    params = jax.device_put(model.init_params([784, 10]))
    compiled = {
        (kernel, form): jax.jit(fn).lower(params, x, y).compile()
        for form, lsm in forms.items()
        for kernel, fn in kernels(lsm).items()
    }
    times: dict[Any, list[float]] = {k: [] for k in compiled}
    for fn in compiled.values():
        jax.block_until_ready(fn(params, x, y))
    for _ in range(ROUNDS // 2):
        for k, fn in compiled.items():
            t0 = time.perf_counter()
            for _ in range(5):  # calls back to back, as the suite times a step
                out = fn(params, x, y)
            jax.block_until_ready(out)
            times[k].append((time.perf_counter() - t0) / 5)
    print(
        f"\n## The log-softmax's form\n\nBatch {BATCH}, standard options, {ROUNDS // 2} rounds of 5 calls.\n"
    )
    print("| kernel | z - logsumexp(z) | jax.nn.log_softmax | ratio, same round |")
    print("|---|---|---|---|")
    for kernel in ("predict", "update"):
        a = np.array(times[(kernel, "z - logsumexp(z)")])
        b = np.array(times[(kernel, "jax.nn.log_softmax")])
        print(
            f"| {kernel} | {np.median(a) * 1e3:.3f} ms | {np.median(b) * 1e3:.3f} ms "
            f"| {np.median(b / a):.2f} |"
        )


if __name__ == "__main__":
    main()
