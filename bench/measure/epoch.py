"""The ``epoch`` kernel: one whole training epoch, the notebook's loop against the fused one.

- ``notebook``: the seed notebook's loop. A Python ``for`` over the epoch's batches in the
  notebook's permutation order, each a NumPy slice fed to the notebook's step (stock
  ``jax.grad``, no donation), so every step copies its batch to the device, as the notebook
  does.
- ``jit``: the same loop over this suite's ``jit`` step (its layout, donated params).
- ``scan``: :func:`mnist_kernels.epoch.train_epoch`: the training set stays on the device as
  stored (uint8 pixels and labels, :func:`mnist_kernels.data.stored_form`: a quarter of the
  bytes), each step gathers its batch and converts it inside the one compiled call that runs
  the whole epoch, same order. The row's ``options`` say so (``resident``).

A sample is one epoch, synced. Step columns are per SGD step (epoch time / steps in the epoch);
``steps_per_call`` holds the number of steps, so epoch time = ``step_median_s * steps_per_call``.
Every variant ends with the same parameters to float32 tolerance (tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_kernels import data, model, variants
from mnist_kernels import epoch as fused

from .. import catalog
from ..protocol import TimingSettings
from . import timing
from .kernels import compute_of

#: the variants with an epoch kernel (the notebook's loop, the jit loop, the fused epoch).
VARIANTS = tuple(v for v in catalog.JAX_VARIANTS if catalog.EPOCH in catalog.kernels_of(v))
#: the dtype the fused epoch keeps the dataset in on the device: as stored.
RESIDENT = "uint8"


def _xla_options(spec: dict[str, Any], backend: str) -> dict[str, Any]:
    name = spec.get("compile_options") or catalog.STANDARD_COMPILE
    options = catalog.compiler_options(name, backend)
    if options is None:
        raise ValueError(f"{name} has no compile options for {backend}")
    return options


def _fused(spec, images, labels, params0, perms, dev, repeats):
    """The fused epoch: data on the device as stored, one compiled call;
    ``(fn, phases, compiled, params, options)``."""
    import jax

    compute = compute_of(spec)
    b, lr = int(spec["batch_size"]), float(spec.get("lr", 0.001))
    pixels, classes = data.stored_form(images, labels)
    dev_x, dev_y = jax.device_put(pixels, dev), jax.device_put(classes, dev)
    params = jax.device_put(params0, dev)
    xla = tuple(sorted(_xla_options(spec, dev.platform).items()))
    fn = fused.epoch_fn(b, lr, compute, xla)
    perm = jax.device_put(np.asarray(next(perms), np.int32), dev)
    jax.block_until_ready((dev_x, dev_y, params, perm))
    compiled, phases = timing.cold_compiles(
        lambda: timing.aot_compile(fn, params, dev_x, dev_y, perm), repeats
    )

    def epoch(p: Any) -> Any:
        return fn(p, dev_x, dev_y, jax.device_put(np.asarray(next(perms), np.int32), dev))

    return epoch, phases, compiled, params, {"resident": RESIDENT}


def _loop(spec, images, labels, params0, perms, dev, repeats):
    """A loop of the variant's jitted step fed NumPy slices, as the notebook's is;
    ``(fn, phases, compiled, params, options)``."""
    import jax

    b = int(spec["batch_size"])
    steps = -(-images.shape[0] // b)
    compute = compute_of(spec)
    kernel = variants.get(
        spec["variant"],
        lr=float(spec.get("lr", 0.001)),
        devices=[dev],
        dtype=compute.dtype,
        precision=compute.precision,
        layout=compute.layout,
        compiler_options=_xla_options(spec, dev.platform) or None,
    )
    step = kernel.update_fn
    params = jax.device_put(params0, dev)
    compiled, phases = timing.cold_compiles(
        lambda: timing.aot_compile(step, params, (images[:b], labels[:b])), repeats
    )

    def epoch(p: Any) -> Any:
        perm = next(perms)
        for i in range(steps):
            idx = perm[i * b : (i + 1) * b]
            p = step(p, (images[idx], labels[idx]))
        return p

    return epoch, phases, compiled, params, {"resident": "host float32"}


def measure_epoch(
    spec: dict[str, Any], images: np.ndarray, labels: np.ndarray, settings: TimingSettings
) -> dict[str, Any]:
    """One epoch per sample, synced (see the module docstring)."""
    import jax

    variant, b = spec["variant"], int(spec["batch_size"])
    if variant not in VARIANTS:
        raise ValueError(f"the epoch kernel is measured for {', '.join(VARIANTS)}, not {variant}")
    n = images.shape[0]
    if b > n:
        raise ValueError(f"batch_size {b} is larger than the {n} training examples here")
    dev = jax.devices(spec["backend"])[0]
    steps = -(-n // b)
    perms = iter(fused.epoch_permutations(n, 1000))
    params0 = model.init_params(list(spec["layer_sizes"]))
    build = _fused if variant == "scan" else _loop
    epoch, phases, compiled, params, how = build(
        spec, images, labels, params0, perms, dev, settings.compile_repeats
    )
    facts = timing.compiled_facts(compiled)
    t0 = timing.clock()
    params = epoch(params)  # the first epoch: compiles the short last batch's step, if any
    jax.block_until_ready(params)
    first_call_s = timing.clock() - t0
    one_per_sample = TimingSettings(
        warmup_calls=0,
        min_sample_s=0.0,
        budget_s=settings.budget_s,
        min_samples=settings.min_samples,  # enough for a 95% interval of the median
        max_samples=settings.min_samples,
    )
    with timing.CompileCounter.counting() as counter:
        figures, params = timing.steady_state(epoch, jax.block_until_ready, params, one_per_sample)
    if variant != "scan" and facts["launches_per_call"] is not None:
        facts["launches_per_call"] *= steps  # each step of the loop is a call of the step
    if variant == "scan":
        facts["xla_flops"] = None  # XLA counts the loop body once: not comparable
        facts["bytes_accessed"] = None
    return {
        **phases,
        "first_call_s": first_call_s,
        **timing.per_step(figures, steps),
        **facts,
        "steps_per_call": steps,
        "work_multiplier": 1,
        "flops": float(catalog.flops_update(list(spec["layer_sizes"]), b)),
        "recompiles": counter.count,
        "device_kind": dev.device_kind,
        "options": {"epoch_examples": n, "steps": steps, **how},
    }
