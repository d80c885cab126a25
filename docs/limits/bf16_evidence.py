"""Why a bfloat16 cell is or is not won on this CPU: per-dot timings, the HLO, XLA flags.

Run from the repository root (PyTorch installed, nothing else running)::

    python docs/limits/bf16_evidence.py --batch-sizes 1024,4096 > docs/limits/bf16-cpu-2c-epyc.md

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
4. **The deep float32 step at batch 128** (the deep epoch's): each layer's dots alone, their
   sum and the whole update against the compute bound at the 2048² peak.
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


def _jax_layer(
    batch: int, m: int, n: int, first: bool, layout: str, dtype: str = "bfloat16"
) -> tuple[float, float]:
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
    sync = jax.block_until_ready
    return best_of(lambda: forward(x, w), sync), best_of(lambda: backward(x, w, g), sync)


def _torch_layer(batch: int, m: int, n: int, first: bool) -> tuple[float, float]:
    """The same layer in PyTorch's bfloat16 (``torch.matmul`` on bfloat16 tensors, autograd
    for the backward), as the suite's peer computes it."""
    import torch

    rng = np.random.RandomState(0)
    x = torch.tensor(rng.rand(batch, m), dtype=torch.float32, requires_grad=not first)
    w = torch.tensor(0.1 * rng.rand(m, n), dtype=torch.float32, requires_grad=True)
    g = torch.tensor(rng.rand(batch, n), dtype=torch.bfloat16)
    inputs = (w,) if first else (x, w)

    def forward() -> Any:
        return torch.matmul(x.to(torch.bfloat16), w.to(torch.bfloat16))

    def backward() -> Any:
        return torch.autograd.grad(forward(), inputs, g)

    t_forward = best_of(forward, lambda r: r)
    return t_forward, best_of(backward, lambda r: r) - t_forward


def per_layer(batch: int) -> str:
    lines = [
        f"| layer (batch {batch}) | JAX tuned fwd / bwd | JAX packed fwd / bwd | "
        "PyTorch fwd / bwd | torch/JAX packed, bwd |",
        "|---|---|---|---|---|",
    ]
    for i, (m, n) in enumerate(itertools.pairwise(DEEP)):
        tuned = _jax_layer(batch, m, n, i == 0, "tuned")
        packed = _jax_layer(batch, m, n, i == 0, "packed")
        torch_ = _torch_layer(batch, m, n, i == 0)
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

    lines = [f"| layer (batch {batch}, float32) | forward | backward |", "|---|---|---|"]
    total = 0.0
    for i, (m, n) in enumerate(itertools.pairwise(DEEP)):
        fwd, bwd = _jax_layer(batch, m, n, i == 0, "tuned", "float32")
        total += fwd + bwd
        lines.append(f"| {i}: {batch}×{m} @ {m}×{n} | {fwd * 1e3:.2f} ms | {bwd * 1e3:.2f} ms |")
    rng = np.random.RandomState(0)
    x = jax.device_put(rng.rand(batch, 784).astype(np.float32))
    y = jax.device_put(np.eye(10, dtype=np.float32)[rng.randint(10, size=batch)])
    params = jax.device_put(model.init_params(DEEP))
    step = jax.jit(functools.partial(model.update, lr=0.001, compute=Compute()))
    whole = best_of(lambda: step(params, (x, y)), jax.block_until_ready)
    peak = measure_peaks("cpu", ["float32"])["float32"]["matmul_flops_per_s"]
    bound = model.flops_update(DEEP, batch) / peak
    lines.append(
        f"\nThe dots alone: {total * 1e3:.2f} ms; the whole update: {whole * 1e3:.2f} ms; the "
        f"compute bound at the 2048² peak ({peak / 1e9:.0f} GFLOP/s): {bound * 1e3:.2f} ms "
        f"(dots alone {total / bound:.2f}×, update {whole / bound:.2f}×)."
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
        f"{args.batch_sizes}`; each figure the best of synced calls.\n"
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
