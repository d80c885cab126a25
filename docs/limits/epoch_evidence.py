"""Where the fused [784, 10] epoch's time goes on this CPU, and why one process runs it at 37 ms
and another at 90.

Run from the repository root (nothing else running; Fashion-MNIST installed, else synthetic
data of the same shape)::

    python docs/limits/epoch_evidence.py > docs/limits/epoch-cpu-2c-epyc.md

1. **The step taken apart**, every form a whole epoch in one compiled call, timed in rounds that
   alternate between the forms in one process (so a slow spell of the machine falls on all of
   them alike): the epoch as the suite ships it (``mnist_kernels.epoch``, ``no-ynnpack``, the
   dataset resident as uint8); the same step fed the same two batches in turn (same gather, same
   conversion, rows already in cache); the same update on two float32 batches in turn (no
   gather, no conversion; each step's batch is still a new array, as a gathered one is). Beside
   them the two dots alone (the run's own ceiling, ``bench.measure.ceilings``: the same operand
   every iteration) and the batch's bytes at the measured bandwidth. Then the same table from a
   process held to one core.
2. **The gather is vectorised**: the optimised LLVM IR XLA:CPU emits for the epoch, searched for
   the fusion that converts the gathered uint8 pixels.
3. **Two speeds**: the shipped epoch run back to back for a while, each sample five epochs,
   with the voluntary context switches of the process's threads over that sample (a thread that
   blocks waiting for work and is woken again counts one).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

NO_YNN = (("xla_cpu_experimental_ynn_fusion_type", ""),)
BATCH = 128


def dataset() -> tuple[np.ndarray, np.ndarray, str]:
    from mnist_kernels import data

    try:
        images, labels, *_ = data.load_dataset("fashion-mnist", download=False)
        name = "Fashion-MNIST"
    except data.DatasetNotFoundError:
        images, labels, *_ = data.load_dataset("synthetic", n_train=60000)
        name = "synthetic (Fashion-MNIST not found)"
    pixels, classes = data.stored_form(images, labels)
    return pixels, classes, name


def forms(pixels: np.ndarray, classes: np.ndarray) -> tuple[dict[str, Any], int]:
    """Each form of the epoch, compiled: ``{name: (compiled, args)}``, and the full steps."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from mnist_kernels import data, epoch, model
    from mnist_kernels.matmul import Compute, transposed

    compute = Compute()
    n = pixels.shape[0]
    perm = jnp.asarray(np.random.RandomState(0).permutation(n).astype(np.int32))
    dev_x, dev_y = jax.device_put(pixels), jax.device_put(classes)
    params = model.init_params([784, 10])
    steps = n // BATCH
    first = perm[: 2 * BATCH]
    # two batches, already float32: an argument of the loop (not a constant, which XLA may lay
    # out as it likes at compile time)
    xs = data.pixels_to_float(dev_x[first]).reshape(2, BATCH, 784)
    ys = jax.nn.one_hot(dev_y[first], 10, dtype=jnp.float32).reshape(2, BATCH, 10)
    apart = (jnp.array(xs[0]), jnp.array(xs[1]))  # two buffers: a loop reads either, uncopied

    def dots_step(w: Any, x: Any) -> Any:
        """The forward dot and the packed weight gradient ``(g.T @ x).T``, then SGD."""
        g = jnp.dot(x, w, precision=lax.Precision.HIGHEST) * 1e-3
        dw = jnp.dot(transposed(g), x, precision=lax.Precision.HIGHEST)
        return w - 1e-9 * lax.optimization_barrier(dw).T

    def two_batches(kind: str) -> Any:
        def run(p: Any, images: Any, labels: Any, perm: Any, xs: Any, ys: Any) -> Any:
            def body(p: Any, i: Any) -> tuple[Any, None]:
                if kind == "cached":  # the shipped gather, of the same two batches in turn
                    idx = lax.dynamic_slice_in_dim(perm, (i % 2) * BATCH, BATCH)
                    batch = epoch._batch(images, labels, idx)
                elif kind.startswith("dots"):  # the update's two dots and the SGD step alone
                    (w, b) = p[0]
                    x0, x1 = xs
                    if kind == "dots new":  # of a new batch: one of two, written out this step
                        w = dots_step(w, lax.select(i % 2 == 0, x0, x1))
                    elif kind == "dots turn":  # of two resident batches in turn: nothing written
                        w = lax.cond(i % 2 == 0, dots_step, lambda w, _: dots_step(w, x1), w, x0)
                    else:  # of one resident batch
                        w = dots_step(w, x0)
                    return [(w, b)], None
                else:  # one of two float32 batches: no gather, no conversion
                    batch = (xs[i % 2], ys[i % 2])
                return model.update(p, batch, 0.001, compute), None

            return lax.scan(body, p, jnp.arange(steps))[0]

        return jax.jit(run, donate_argnums=0, compiler_options=dict(NO_YNN))

    shipped = epoch.epoch_fn(BATCH, 0.001, compute, NO_YNN)
    out = {
        "shipped": (shipped, (dev_x, dev_y, perm)),
        "cached rows": (two_batches("cached"), (dev_x, dev_y, perm, xs, ys)),
        "float32 batch": (two_batches("float32"), (dev_x, dev_y, perm, xs, ys)),
        "its two dots, a new batch": (two_batches("dots new"), (dev_x, dev_y, perm, apart, ys)),
        "its two dots, two batches in turn": (
            two_batches("dots turn"),
            (dev_x, dev_y, perm, apart, ys),
        ),
        "its two dots, one batch": (two_batches("dots one"), (dev_x, dev_y, perm, apart, ys)),
    }
    return {name: (fn.lower(params, *a).compile(), a) for name, (fn, a) in out.items()}, steps


def taken_apart(pixels: np.ndarray, classes: np.ndarray, rounds: int) -> str:
    import jax

    from bench.measure.ceilings import measure_thin_ceilings
    from bench.measure.peaks import measure_peaks
    from mnist_kernels import model

    compiled, steps = forms(pixels, classes)
    state = {k: jax.device_put(model.init_params([784, 10])) for k in compiled}
    times: dict[str, list[float]] = {k: [] for k in compiled}
    for name, (fn, args) in compiled.items():
        state[name] = jax.block_until_ready(fn(state[name], *args))  # warm up
    for _ in range(rounds):
        for name, (fn, args) in compiled.items():
            t0 = time.perf_counter()
            state[name] = jax.block_until_ready(fn(state[name], *args))
            times[name].append(time.perf_counter() - t0)
    shipped = np.array(times["shipped"])
    dots = measure_thin_ceilings("cpu", [BATCH])[str(BATCH)]
    bandwidth = measure_peaks("cpu", ["float32"], quick=True)["float32"]["bandwidth_bytes_per_s"]
    cores = len(os.sched_getaffinity(0))
    lines = [
        f"{cores} core{'s' if cores > 1 else ''}; {rounds} rounds, each form once a round; a "
        f"step is the epoch's time over its {steps} full batches.",
        "",
        "| form, batch 128 | epoch (median) | a step | / shipped (median of rounds) |",
        "|---|---|---|---|",
    ]
    for name, ts in times.items():
        a = np.array(ts)
        ratio = float(np.median(a / shipped))
        lines.append(
            f"| {name} | {np.median(a) * 1e3:.1f} ms | {np.median(a) / steps * 1e6:.1f} µs "
            f"| {ratio:.2f} |"
        )
    step_dots = dots["forward_s"] + dots["weight_grad_s"]
    step_bytes = BATCH * 785 / bandwidth
    lines += [
        f"| the two dots alone (ceiling: {dots['forward_form']}; {dots['weight_grad_form']}) "
        f"| {step_dots * steps * 1e3:.1f} ms | {step_dots * 1e6:.1f} µs | |",
        f"| the batch's {BATCH * 785} stored bytes at {bandwidth / 1e9:.1f} GB/s "
        f"| {step_bytes * steps * 1e3:.1f} ms | {step_bytes * 1e6:.1f} µs | |",
    ]
    med = {k: float(np.median(v)) / steps * 1e6 for k, v in times.items()}
    lines += [
        "",
        f"Rows from memory (shipped − cached rows): {med['shipped'] - med['cached rows']:.1f} µs "
        f"a step; gathering and converting rows in cache (cached rows − float32 batch): "
        f"{med['cached rows'] - med['float32 batch']:.1f} µs; the update of a float32 batch "
        f"beyond its two dots of a new batch: "
        f"{med['float32 batch'] - med['its two dots, a new batch']:.1f} µs; what a batch "
        f"written in the step costs the dots (a new batch − two batches in turn): "
        f"{med['its two dots, a new batch'] - med['its two dots, two batches in turn']:.1f} µs.",
    ]
    return "\n".join(lines)


def one_core(args: argparse.Namespace) -> str:
    """The taken-apart table again in a process held to one core (XLA sizes its threads by the
    cores a process may use)."""
    cmd = [sys.executable, __file__, "--rounds", str(args.rounds), "--taken-apart-only"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.strip()


def vectorised(pixels: np.ndarray, classes: np.ndarray) -> str:
    """The optimised IR of the shipped epoch: the fusions converting uint8 to float32."""
    from mnist_kernels import epoch, model
    from mnist_kernels.matmul import Compute

    with tempfile.TemporaryDirectory() as dump:
        fn = epoch.epoch_fn(BATCH, 0.001, Compute(), NO_YNN)
        n = pixels.shape[0]
        perm = np.random.RandomState(0).permutation(n).astype(np.int32)
        options = {**dict(NO_YNN), "xla_dump_to": dump}
        lowered = fn.lower(model.init_params([784, 10]), pixels, classes, perm)
        lowered.compile(compiler_options=options)
        found = []
        for path in sorted(glob.glob(os.path.join(dump, "*ir-with-opt.ll"))):
            with open(path) as f:
                text = f.read()
            vector = re.findall(r"uitofp <(\d+) x i8>", text)
            scalar = len(re.findall(r"uitofp i8 ", text))
            if vector or scalar:
                kernel = re.sub(r".*jit_run\.|_kernel_module.*|\.ir-with-opt\.ll", "", path)
                widths = sorted({int(w) for w in vector})
                found.append(
                    f"| `{kernel}` | {len(vector)} (of {', '.join(map(str, widths)) or '—'} "
                    f"lanes) | {scalar} |"
                )
    head = [
        "| kernel converting uint8 pixels | vector conversions | scalar conversions |",
        "|---|---|---|",
    ]
    return "\n".join(head + (found or ["| none found (the dump's names changed?) | | |"]))


def two_speeds(pixels: np.ndarray, classes: np.ndarray, seconds: float) -> str:
    import jax
    import jax.numpy as jnp

    from mnist_kernels import epoch, model
    from mnist_kernels.matmul import Compute

    fn = epoch.epoch_fn(BATCH, 0.001, Compute(), NO_YNN)
    n = pixels.shape[0]
    perm = jnp.asarray(np.random.RandomState(0).permutation(n).astype(np.int32))
    dev_x, dev_y = jax.device_put(pixels), jax.device_put(classes)
    p = jax.block_until_ready(fn(model.init_params([784, 10]), dev_x, dev_y, perm))
    pid = os.getpid()

    def switches() -> int:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            total += int(line.split()[1])
            except OSError:
                continue  # a thread that ended
        return total

    samples: list[tuple[float, float]] = []
    end = time.time() + seconds
    while time.time() < end:
        c0, t0 = switches(), time.perf_counter()
        for _ in range(5):
            p = fn(p, dev_x, dev_y, perm)
        jax.block_until_ready(p)
        samples.append(((time.perf_counter() - t0) / 5, (switches() - c0) / 5))
    t = np.array([s[0] for s in samples])
    c = np.array([s[1] for s in samples])
    fast = t <= 1.5 * t.min()
    lines = [
        f"{len(samples)} samples of five epochs in {seconds:.0f} s, one process. A sample is "
        "'fast' within 1.5× of the quickest.",
        "",
        "| speed | samples | epoch (median) | voluntary context switches an epoch (median) |",
        "|---|---|---|---|",
    ]
    for label, mask in (("fast", fast), ("slow", ~fast)):
        if mask.any():
            lines.append(
                f"| {label} | {int(mask.sum())} | {np.median(t[mask]) * 1e3:.1f} ms "
                f"| {np.median(c[mask]):.0f} |"
            )
        else:
            lines.append(f"| {label} | 0 | — | — |")
    order = "".join("F" if f else "s" for f in fast)
    lines += ["", f"In order: `{order}`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the taken-apart forms")
    parser.add_argument("--watch-s", type=float, default=60.0, help="seconds of the speed watch")
    parser.add_argument("--taken-apart-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import jax

    pixels, classes, name = dataset()
    if args.taken_apart_only:
        print(taken_apart(pixels, classes, args.rounds))
        return
    print("# The fused [784, 10] epoch on this CPU\n")
    print(
        f"JAX {jax.__version__}, {os.cpu_count()} CPUs, {name}; "
        f"`python docs/limits/epoch_evidence.py --rounds {args.rounds} "
        f"--watch-s {args.watch_s:.0f}`.\n"
    )
    print("## The step taken apart\n")
    print(taken_apart(pixels, classes, args.rounds) + "\n")
    print(one_core(args) + "\n")
    print("## The gather is vectorised\n")
    print(vectorised(pixels, classes) + "\n")
    print("## Two speeds\n")
    print(two_speeds(pixels, classes, args.watch_s))


if __name__ == "__main__":
    main()
