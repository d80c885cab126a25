"""Time each variant's compiled ``update`` and ``predict`` with pytest-benchmark.

One benchmark per variant, kernel and layer sizes, batch 128, float32: the inputs are placed on
the device once, the kernel is compiled and warmed up before timing, and the timed call ends
with ``jax.block_until_ready`` so that a round measures the whole computation, not just its
dispatch. ``update`` donates its params, so the timed function threads them through a closure.

Each benchmark's ``extra_info`` carries the key columns of :mod:`bench.results.schema` (framework,
variant, kernel, backend, device_kind, n_processes, n_devices, layer_sizes, batch_size,
dtype), ``steps_per_call`` and ``config_id``, so that ``python -m bench compare`` can match a
saved pytest-benchmark file against a ``python -m bench run`` directory. Times in the JSON are
per call (seconds); ``scan`` makes ``steps_per_call`` SGD steps in one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

from bench.results import schema
from mnist_kernels import NUM_CLASSES, init_params, variants

LAYER_SIZES = ([784, 10], [784, 256, 256, 10])
BATCH_SIZE = 128
DTYPE = "float32"
#: timed rounds per benchmark (``--benchmark-min-rounds`` raises it).
ROUNDS = 50
WARMUP_ROUNDS = 3

CASES = [
    pytest.param(
        v, sizes, BATCH_SIZE, DTYPE, id=f"{v}-{','.join(map(str, sizes))}-{BATCH_SIZE}-{DTYPE}"
    )
    for v in variants.names()
    for sizes in LAYER_SIZES
]


def _batch(layer_sizes: list[int], batch_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic images in [0, 1) and one-hot labels; stacked ``(S, B, ...)`` when steps > 1."""
    rng = np.random.default_rng(0)
    lead = (steps, batch_size) if steps > 1 else (batch_size,)
    images = rng.random((*lead, layer_sizes[0]), dtype=np.float32)
    labels = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, lead)]
    return images, labels


def _extra_info(kernel: Any, kernel_name: str, layer_sizes: list[int], batch_size: int) -> dict:
    dev = kernel.devices[0]
    info = {
        "framework": "jax",
        "variant": kernel.name,
        "kernel": kernel_name,
        "backend": dev.platform,
        "device_kind": dev.device_kind,
        "n_processes": jax.process_count(),
        "n_devices": kernel.n_devices,
        "layer_sizes": ",".join(map(str, layer_sizes)),
        "batch_size": batch_size,
        "dtype": kernel.dtype,
        "steps_per_call": kernel.steps_per_call if kernel_name == "update" else 1,
        "work_multiplier": kernel.work_multiplier,
    }
    info["config_id"] = schema.config_id(info)
    return info


def _rounds(request: pytest.FixtureRequest) -> int:
    return max(ROUNDS, int(request.config.getoption("benchmark_min_rounds", ROUNDS) or ROUNDS))


def _run(benchmark: Any, request: pytest.FixtureRequest, fn: Callable[[], None]) -> None:
    fn()  # compile
    fn()  # first steady-state call
    benchmark.pedantic(fn, rounds=_rounds(request), warmup_rounds=WARMUP_ROUNDS, iterations=1)


@pytest.mark.parametrize(("variant", "layer_sizes", "batch_size", "dtype"), CASES)
def test_update(benchmark, request, variant, layer_sizes, batch_size, dtype):
    kernel = variants.get(variant, dtype=dtype)
    params, batch = kernel.place(
        init_params(layer_sizes), _batch(layer_sizes, batch_size, kernel.steps_per_call)
    )
    state = {"params": params}

    def step() -> None:
        state["params"] = kernel.update(state["params"], batch)  # old params are donated
        jax.block_until_ready(state["params"])

    benchmark.group = f"update {','.join(map(str, layer_sizes))} b{batch_size} {dtype}"
    benchmark.extra_info.update(_extra_info(kernel, "update", layer_sizes, batch_size))
    _run(benchmark, request, step)
    assert all(np.isfinite(w).all() for w, _ in kernel.to_host(state["params"]))


@pytest.mark.parametrize(("variant", "layer_sizes", "batch_size", "dtype"), CASES)
def test_predict(benchmark, request, variant, layer_sizes, batch_size, dtype):
    kernel = variants.get(variant, dtype=dtype)
    images, labels = _batch(layer_sizes, batch_size, kernel.steps_per_call)
    params, _ = kernel.place(init_params(layer_sizes), (images, labels))
    inputs = kernel.place_inputs(images[0] if kernel.steps_per_call > 1 else images)

    def call() -> None:
        jax.block_until_ready(kernel.predict(params, inputs))

    benchmark.group = f"predict {','.join(map(str, layer_sizes))} b{batch_size} {dtype}"
    benchmark.extra_info.update(_extra_info(kernel, "predict", layer_sizes, batch_size))
    _run(benchmark, request, call)
    out = np.asarray(kernel.predict(params, inputs))
    assert out.shape[-2:] == (batch_size, NUM_CLASSES)
