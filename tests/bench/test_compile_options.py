"""The compile-options axis: named sets of XLA options (bench.catalog.COMPILE_OPTIONS) passed as
jax.jit's per-compile compiler_options to every function of a variant, part of a row's
identity, left out with the reason where they cannot apply."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bench import catalog, selection
from bench.measure import kernels
from bench.protocol import ProtocolError, TimingSettings, for_worker, measure
from bench.regression.sides import config_label
from bench.report import tables
from bench.results import schema
from mnist_kernels import model, variants
from tests.helpers import make_row

CPU = {"cpu": {"device_kind": "cpu", "device_count": 4}}


def batch(kernel, n: int = 16):
    """A batch shaped for ``kernel``'s update (scan: a stack of its steps' batches)."""
    s = kernel.steps_per_call
    x, y = np.zeros((s * n, 784), np.float32), np.zeros((s * n, 10), np.float32)
    return (x.reshape(s, n, 784), y.reshape(s, n, 10)) if kernel.name == "scan" else (x, y)


@pytest.mark.parametrize("name", [v for v in variants.names() if v != "pmap"])
def test_every_jit_of_a_variant_compiles_with_the_options(name):
    """An option XLA does not know fails the compile: proof that it reached the compiler, for
    the update and the predict alike."""
    devices = jax.devices()[:2] if variants.is_multi_device(name) else jax.devices()[:1]
    bogus = variants.get(name, devices=devices, compiler_options={"xla_no_such_option": 1})
    params, placed = bogus.place(model.init_params([784, 16, 10]), batch(bogus))
    with pytest.raises(Exception, match="xla_no_such_option"):
        bogus.update_fn.lower(params, placed).compile()
    fast = variants.get(
        name, devices=devices, compiler_options=catalog.compiler_options("fast-compile", "cpu")
    )
    params, placed = fast.place(model.init_params([784, 16, 10]), batch(fast))
    out = jax.tree.leaves(fast.to_host(fast.update(params, placed)))
    assert np.shape(out[-1])[-1] == 10 and all(np.isfinite(leaf).all() for leaf in out)


@pytest.mark.parametrize("name", [n for n in catalog.COMPILE_OPTIONS if n != "standard"])
@pytest.mark.parametrize("layers", [[784, 10], [784, 64, 32, 10]])
def test_a_compile_set_changes_no_number_beyond_float32_tolerance(name, layers):
    """XLA's options change how the step runs, never what it computes: the update and the
    predict under each named set equal XLA's own within float32 tolerance (on a real batch:
    zeros would hide a difference)."""
    rng = np.random.RandomState(5)
    x = rng.rand(64, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 64)]
    out = {}
    for compiled in ("standard", name):
        k = variants.get("jit", compiler_options=catalog.compiler_options(compiled, "cpu"))
        params, placed = k.place(model.init_params(layers), (x, y))
        predicted = np.asarray(k.predict(params, placed[0]))
        out[compiled] = [predicted, *jax.tree.leaves(k.to_host(k.update(params, placed)))]
    for got, want in zip(out[name], out["standard"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pmap_takes_no_compile_options():

    with pytest.raises(ValueError, match="pmap takes no per-compile compiler options"):
        variants.get("pmap", devices=jax.devices()[:2], compiler_options={"x": 1})


def test_the_axis_expands_where_it_applies_and_says_why_elsewhere():
    grid = selection.Grid(
        "c",
        ("jit", "pmap", "numpy"),
        ("update", "epoch"),
        ((784, 10),),
        (128,),
        compile_options=("standard", "fast-compile"),
    )
    specs, skipped = selection.expand([grid], backends=CPU)
    runs = sorted((s["variant"], s["kernel"], s["compile_options"]) for s in specs)
    assert runs == [
        ("jit", "epoch", "fast-compile"),  # the epoch's loop compiles its step with them too
        ("jit", "epoch", "standard"),
        ("jit", "update", "fast-compile"),
        ("jit", "update", "standard"),
        ("numpy", "update", "standard"),
        ("pmap", "update", "standard"),
    ]
    reasons = {s["what"]: s["reason"] for s in skipped}
    fast = {w: r for w, r in reasons.items() if w.endswith("fast-compile")}
    assert any("jax.pmap has none" in r for r in fast.values())
    assert any("the JAX variants only" in r for r in fast.values())

    assert "fast-compile" in [s["compile_options"] for s in specs if s["variant"] == "jit"]
    with pytest.raises(ValueError, match="unknown compile options 'o9'"):
        selection.expand([selection.override([grid], compile_options=("o9",))[0]], backends=CPU)


def test_compile_options_are_part_of_a_rows_identity():
    standard = make_row(compile_options="standard")
    old = {k: v for k, v in standard.items() if k != "compile_options"}  # written before
    fast = make_row(compile_options="fast-compile")
    assert schema.config_id(standard) == schema.config_id(old) != schema.config_id(fast)
    assert config_label(fast).endswith("float32 fast-compile 1dev")
    assert "standard" not in config_label(standard)
    assert tables.variant_label("jit", compiled="fast-compile") == "jit [fast-compile]"
    assert tables.base_variant("jit [fast-compile]") == "jit"
    # a worker of an older protocol compiles with XLA's own options only
    spec = {"variant": "jit", "kernel": "update", "compile_options": "standard"}
    assert "compile_options" not in for_worker(measure(spec), 2)["spec"]
    with pytest.raises(ProtocolError, match="fast-compile"):
        for_worker(measure({**spec, "compile_options": "fast-compile"}), 2)


def test_a_fast_compile_row_is_measured_with_its_options():
    spec = {
        "framework": "jax",
        "variant": "jit",
        "kernel": "update",
        "layer_sizes": [784, 64, 64, 10],
        "batch_size": 32,
        "dtype": "float32",
        "n_devices": 1,
        "backend": "cpu",
        "lr": 0.001,
        "options": {},
        "compile_options": "fast-compile",
    }
    rng = np.random.RandomState(0)
    x, y = (
        rng.rand(64, 784).astype(np.float32),
        np.eye(10, dtype=np.float32)[rng.randint(0, 10, 64)],
    )
    quick = TimingSettings(budget_s=0.02, min_samples=3, sync_budget_s=0.01, compile_repeats=1)
    row = kernels.measure(spec, x, y, quick)
    assert row["recompiles"] == 0 and row["step_median_s"] > 0
    with pytest.raises(ValueError, match="has no compile options for cpu"):
        catalog.COMPILE_OPTIONS["gpu-only"] = {"gpu": {"xla_gpu_autotune_level": 0}}
        try:
            kernels.measure({**spec, "compile_options": "gpu-only"}, x, y, quick)
        finally:
            del catalog.COMPILE_OPTIONS["gpu-only"]
