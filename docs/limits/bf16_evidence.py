"""Why a bfloat16 cell is or is not won on this CPU: per-dot timings, the HLO, XLA flags.

Run from the repository root (PyTorch installed, nothing else running)::

    python docs/limits/bf16_evidence.py --batch-sizes 32,4096 > docs/limits/bf16-cpu-2c-epyc.md

Three parts, each printed as a Markdown section:

1. **Per-layer timings**: each layer of the deep net's bfloat16 update, its forward dot and its
   backward dots (weight gradient; input gradient but for the first layer) timed alone at their
   own shapes, best of several synced calls: JAX's as the model computes them in the `tuned`
   layout (transposed operands as XLA receives them) and the `packed` one (transposes written
   out, the copies' time included), PyTorch's `torch.matmul` on bfloat16 tensors and autograd.
2. **The HLO**: the operand types of every dot in the optimized HLO of the whole update, per
   layout: which dots XLA:CPU runs on bfloat16 operands and which it widens to float32.
3. **XLA flags**: the whole update (the fastest layout) under each set of XLA flags tried, each
   in a fresh process (``XLA_FLAGS`` is read once), beside PyTorch's step.
4. **The deep float32 step at batch 128** (the deep epoch's): each layer's dots alone (JAX's,
   and the same dots in PyTorch and NumPy's BLAS), their sum and the whole update against the
   compute bound at the 2048² peak.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

#: the XLA:CPU flag sets tried (``XLA_FLAGS``), each in a fresh process
FLAG_SETS = {
    "XLA's own": "",
    "oneDNN": "--xla_cpu_use_onednn=true",
    "oneDNN custom calls": "--xla_cpu_experimental_onednn_custom_call=true",
    "oneDNN dot fusions": "--xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
    "XNNPACK": "--xla_cpu_use_xnnpack=true",
    "XNNPACK dot fusions": "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
    "no YNNPACK fusions": "--xla_cpu_experimental_ynn_fusion_type=",
    "YNNPACK for the dots alone": (
        "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    ),
    "AVX-512 BF16 ISA cap": "--xla_cpu_max_isa=AVX512",
}
DEEP = [784, 1024, 1024, 10]


def best_of(fn: Any, sync: Any, reps: int = 7) -> float:
    sync(fn())
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        sync(fn())
        best = min(best, time.perf_counter() - t0)
    return best


#: the per-layer timings: every dot of every library in turn, :data:`CALLS` timed calls each
#: after a warm one, and that :data:`PASSES` times, so that a slow spell of the shared machine
#: (seconds long) does not fall on one library alone; each figure is a dot's best call. A dot's
#: calls stay together: PyTorch's threads spin for a while after each of its calls, and JAX's
#: sleep, so alternating libraries call by call would time each one's wake-up
PASSES, CALLS = 3, 5

Dots = dict[str, Any]  # "fwd" and "bwd": a call each, "sync": what waits for its result


def _jax_layer(
    batch: int, m: int, n: int, first: bool, layout: str, dtype: str = "bfloat16"
) -> Dots:
    """One layer's forward dot and its backward dots (the weight gradient, and the input
    gradient unless it is the first layer), as the model computes them in ``layout``: float32
    operands in, bfloat16 products (the conversions included)."""
    import jax

    from mnist_kernels.matmul import Compute, matmul

    c = Compute(dtype, layout=layout)
    rng = np.random.RandomState(0)
    x = jax.device_put(rng.rand(batch, m).astype(np.float32))
    w = jax.device_put(0.1 * rng.rand(m, n).astype(np.float32))
    g = jax.device_put(rng.rand(batch, n).astype(np.float32))
    forward = jax.jit(lambda x, w: matmul(x, w, c))
    if first:  # the data needs no gradient
        backward = jax.jit(lambda x, w, g: jax.vjp(lambda v: matmul(x, v, c), w)[1](g))
    else:
        backward = jax.jit(lambda x, w, g: jax.vjp(lambda u, v: matmul(u, v, c), x, w)[1](g))
    return {
        "fwd": lambda: forward(x, w),
        "bwd": lambda: backward(x, w, g),
        "sync": jax.block_until_ready,
    }


def _torch_layer(batch: int, m: int, n: int, first: bool, dtype: str = "bfloat16") -> Dots:
    """The same layer in PyTorch (bfloat16: ``torch.matmul`` on bfloat16 tensors, autograd for
    the backward, as the suite's peer computes it; float32: ``torch.matmul``). Autograd runs the
    forward again: its time is taken off the backward's (:func:`_times`)."""
    import torch

    low = getattr(torch, dtype)
    rng = np.random.RandomState(0)
    x = torch.tensor(rng.rand(batch, m), dtype=torch.float32, requires_grad=not first)
    w = torch.tensor(0.1 * rng.rand(m, n), dtype=torch.float32, requires_grad=True)
    g = torch.tensor(rng.rand(batch, n), dtype=low)
    inputs = (w,) if first else (x, w)

    def forward() -> Any:
        return torch.matmul(x.to(low), w.to(low))

    def backward() -> Any:
        return torch.autograd.grad(forward(), inputs, g)

    return {"fwd": forward, "bwd": backward, "sync": lambda r: r, "bwd_includes_fwd": True}


def _numpy_layer(batch: int, m: int, n: int, first: bool) -> Dots:
    """The same layer's float32 dots in NumPy (its BLAS): ``x @ w``; ``x.T @ g`` and, unless it
    is the first layer, ``g @ w.T``."""
    rng = np.random.RandomState(0)
    x = rng.rand(batch, m).astype(np.float32)
    w = (0.1 * rng.rand(m, n)).astype(np.float32)
    g = rng.rand(batch, n).astype(np.float32)

    def backward() -> Any:
        return (x.T @ g,) if first else (x.T @ g, g @ w.T)

    return {"fwd": lambda: x @ w, "bwd": backward, "sync": lambda r: r}


def _times(layers: dict[Any, Dots]) -> dict[Any, tuple[float, float]]:
    """Each layer's best forward and backward seconds (:data:`PASSES` × :data:`CALLS`)."""
    best = {(k, part): float("inf") for k in layers for part in ("fwd", "bwd")}
    for _ in range(PASSES):
        for k, dots in layers.items():
            for part in ("fwd", "bwd"):
                dots["sync"](dots[part]())  # compile, warm up, wake the threads
                for _ in range(CALLS):
                    t0 = time.perf_counter()
                    dots["sync"](dots[part]())
                    best[k, part] = min(best[k, part], time.perf_counter() - t0)
    out = {}
    for k, dots in layers.items():
        fwd, bwd = best[k, "fwd"], best[k, "bwd"]
        out[k] = (fwd, bwd - fwd if dots.get("bwd_includes_fwd") else bwd)
    return out


def per_layer(batch: int) -> str:
    lines = [
        f"| layer (batch {batch}) | JAX tuned fwd / bwd | JAX packed fwd / bwd | "
        "PyTorch fwd / bwd | torch/JAX packed, bwd |",
        "|---|---|---|---|---|",
    ]
    shapes = list(itertools.pairwise(DEEP))
    layers = {}
    for i, (m, n) in enumerate(shapes):
        layers[i, "tuned"] = _jax_layer(batch, m, n, i == 0, "tuned")
        layers[i, "packed"] = _jax_layer(batch, m, n, i == 0, "packed")
        layers[i, "torch"] = _torch_layer(batch, m, n, i == 0)
    times = _times(layers)
    for i, (m, n) in enumerate(shapes):
        tuned, packed, torch_ = (times[i, k] for k in ("tuned", "packed", "torch"))
        cells = [f"{a * 1e3:.2f} / {b * 1e3:.2f} ms" for a, b in (tuned, packed, torch_)]
        lines.append(
            f"| {i}: {batch}×{m} @ {m}×{n} | "
            + " | ".join(cells)
            + f" | {torch_[1] / packed[1]:.2f}× |"
        )
    return "\n".join(lines)


def float32_step(batch: int) -> str:
    """The deep net's float32 step at ``batch`` (the deep epoch's): each layer's dots alone in
    the tuned layout, their sum, the whole update, and the compute bound at the 2048² peak."""
    import functools

    import jax

    from bench.measure.peaks import measure_peaks
    from mnist_kernels import model
    from mnist_kernels.matmul import Compute

    lines = [
        f"| layer (batch {batch}, float32) | JAX fwd / bwd | PyTorch fwd / bwd | NumPy fwd / bwd |",
        "|---|---|---|---|",
    ]
    shapes = list(itertools.pairwise(DEEP))
    layers = {}
    for i, (m, n) in enumerate(shapes):
        layers[i, "JAX"] = _jax_layer(batch, m, n, i == 0, "tuned", "float32")
        layers[i, "PyTorch"] = _torch_layer(batch, m, n, i == 0, "float32")
        layers[i, "NumPy"] = _numpy_layer(batch, m, n, i == 0)
    times = _times(layers)
    total = {"JAX": 0.0, "PyTorch": 0.0, "NumPy": 0.0}
    for i, (m, n) in enumerate(shapes):
        for k in total:
            total[k] += sum(times[i, k])
        cells = " | ".join(
            f"{times[i, k][0] * 1e3:.2f} / {times[i, k][1] * 1e3:.2f} ms" for k in total
        )
        lines.append(f"| {i}: {batch}×{m} @ {m}×{n} | {cells} |")
    rng = np.random.RandomState(0)
    x = jax.device_put(rng.rand(batch, 784).astype(np.float32))
    y = jax.device_put(np.eye(10, dtype=np.float32)[rng.randint(10, size=batch)])
    params = jax.device_put(model.init_params(DEEP))
    step = jax.jit(functools.partial(model.update, lr=0.001, compute=Compute()))
    whole = best_of(lambda: step(params, (x, y)), jax.block_until_ready)
    peak = measure_peaks("cpu", ["float32"])["float32"]["matmul_flops_per_s"]
    bound = model.flops_update(DEEP, batch) / peak
    jax_total = total["JAX"]
    lines.append(
        f"\nThe dots alone: {jax_total * 1e3:.2f} ms; the whole update: {whole * 1e3:.2f} ms; the "
        f"compute bound at the 2048² peak ({peak / 1e9:.0f} GFLOP/s): {bound * 1e3:.2f} ms "
        f"(dots alone {jax_total / bound:.2f}×, update {whole / bound:.2f}×). The same dots "
        "in the other libraries here: "
        + ", ".join(
            f"{k} {t * 1e3:.2f} ms ({t / bound:.2f}×)" for k, t in total.items() if k != "JAX"
        )
        + "."
    )
    return "\n".join(lines)


def hlo_dot_types(batch: int) -> str:
    import jax

    from bench.measure import hlo
    from mnist_kernels import model
    from mnist_kernels.matmul import Compute

    x = np.zeros((batch, 784), np.float32)
    y = np.zeros((batch, 10), np.float32)
    params = model.init_params(DEEP)
    lines = []
    for layout in ("stock", "tuned", "packed"):
        compute = Compute("bfloat16", layout=layout)
        step = jax.jit(lambda p, b, c=compute: model.update(p, b, 0.001, c))
        found = hlo.dots(step.lower(params, (x, y)).compile().as_text())
        wide = [d for d in found if "f32" in d["operands"]]
        lines.append(
            f"- `{layout}`: {len(found)} dots, {len(wide)} of them on operands widened to "
            "float32: " + ", ".join(f"`{d['name']}`" for d in wide)
        )
    return "\n".join(lines)


def one_update(batch: int, layout: str) -> float:
    """The deep bfloat16 update's step time in this process (``XLA_FLAGS`` as it was set)."""
    import functools

    import jax

    from mnist_kernels import model
    from mnist_kernels.matmul import Compute

    rng = np.random.RandomState(0)
    x = jax.device_put(rng.rand(batch, 784).astype(np.float32))
    y = jax.device_put(np.eye(10, dtype=np.float32)[rng.randint(10, size=batch)])
    params = jax.device_put(model.init_params(DEEP))
    step = jax.jit(
        functools.partial(model.update, lr=0.001, compute=Compute("bfloat16", layout=layout))
    )
    return best_of(lambda: step(params, (x, y)), jax.block_until_ready, reps=5)


def torch_update(batch: int) -> float:
    """The suite's own PyTorch peer step (``torch-eager``, bfloat16) at ``batch``."""
    from bench.measure import peers
    from mnist_kernels import model

    step = peers.make_step("torch-eager", DEEP, dtype="bfloat16")
    rng = np.random.RandomState(0)
    x = step.to_device(rng.rand(batch, 784).astype(np.float32))
    y = step.to_device(np.eye(10, dtype=np.float32)[rng.randint(10, size=batch)])
    state = [step.params_from_numpy(model.init_params(DEEP))]

    def once() -> Any:
        state[0] = step.update(state[0], x, y)
        return state[0]

    return best_of(once, lambda r: r, reps=5)


def flags(batch: int, layout: str) -> str:
    lines = [
        f"| XLA_FLAGS (batch {batch}, `{layout}`) | JAX bfloat16 update | vs XLA's own |",
        "|---|---|---|",
    ]
    base = None
    for name, value in FLAG_SETS.items():
        env = {**os.environ, "XLA_FLAGS": value}
        code = (
            "import json, sys; sys.path.insert(0, 'docs/limits'); import bf16_evidence as e; "
            f"print(json.dumps(e.one_update({batch}, {layout!r})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode:
            why = (done.stderr.strip().splitlines() or ["failed"])[-1][:120]
            lines.append(f"| {name} (`{value}`) | refused: {why} | |")
            continue
        t = json.loads(done.stdout.strip().splitlines()[-1])
        base = base or t
        lines.append(f"| {name} (`{value or '—'}`) | {t * 1e3:.1f} ms | {t / base:.2f}× |")
    lines.append(
        f"| PyTorch autocast bfloat16 (same process as above) | {torch_update(batch) * 1e3:.1f} ms | |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="4096")
    parser.add_argument(
        "--float32-batch", type=int, default=128, help="the deep float32 step's batch (0: none)"
    )
    args = parser.parse_args()
    import jax
    import torch

    print("# bfloat16 on this CPU: per-dot timings, the HLO, the XLA flags tried\n")
    print(
        f"JAX {jax.__version__}, PyTorch {torch.__version__}, {os.cpu_count()} CPUs; "
        "`python docs/limits/bf16_evidence.py --batch-sizes "
        f"{args.batch_sizes}`; each figure the best of synced calls (the per-layer dots: of {PASSES} passes of {CALLS} calls).\n"
    )
    for b in [int(v) for v in args.batch_sizes.split(",")]:
        print(f"## Batch {b}\n\n### Each layer's dots alone\n\n{per_layer(b)}\n")
        print(f"### The dots in the optimized HLO of the whole update\n\n{hlo_dot_types(b)}\n")
        print(f"### XLA flags tried\n\n{flags(b, 'packed')}\n")
    if args.float32_batch:
        print(f"## The deep net's float32 step at batch {args.float32_batch}\n")
        print(f"{float32_step(args.float32_batch)}\n")


if __name__ == "__main__":
    main()
