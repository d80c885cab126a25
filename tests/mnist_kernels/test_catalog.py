"""The catalogue of variants is the one the registry builds, and its rules say what the
builders do."""

from __future__ import annotations

import pytest

from mnist_kernels import catalog, variants


def test_every_catalogued_variant_is_built_and_nothing_else():
    assert variants.names() == list(catalog.VARIANTS)
    for name in catalog.VARIANTS:
        kernel = variants.get(name, devices=2 if catalog.is_multi_device(name) else 1)
        assert kernel.n_devices == (2 if catalog.is_multi_device(name) else 1)
    with pytest.raises(ValueError, match="unknown variant"):
        variants.register("not-catalogued")


def test_options_are_checked_before_anything_is_built():
    assert variants.get("scan", steps=3).steps_per_call == 3
    with pytest.raises(ValueError, match="steps=0"):
        variants.get("scan", steps=0)
    with pytest.raises(ValueError, match="no option 'steps'"):
        variants.get("jit", steps=3)
    assert variants.get("ensemble", members=3).work_multiplier == 3


def test_the_catalogue_and_the_builders_agree_on_model_parallel():
    for n in (1, 2, 4):
        kernel = variants.get("sharded_tp", devices=n)
        mp = catalog.model_parallel(n)
        assert kernel.options["mesh"] == {"batch": n // mp, "model": mp}
        assert catalog.data_parallel_groups("sharded_tp", n) == n // mp
    assert catalog.data_parallel_groups("sharded", 4) == 4
    assert catalog.data_parallel_groups("jit", 4) == 1


def test_layer_sizes_and_costs():
    assert catalog.parse_layers("784, 32,10") == (784, 32, 10)
    for bad in ("100,10", "784,9", "784,0,10", "784"):
        with pytest.raises(ValueError, match="must start with 784"):
            catalog.parse_layers(bad)
    assert catalog.n_params([784, 10]) == 7850
    # forward: 2*B*m*n per layer; update: three times that, less the first layer's input grad
    assert catalog.flops_forward([784, 32, 10], 4) == 2 * 4 * (784 * 32 + 32 * 10)
    assert catalog.flops_update([784, 32, 10], 4) == 2 * 4 * (3 * 784 * 32 + 3 * 32 * 10 - 784 * 32)
