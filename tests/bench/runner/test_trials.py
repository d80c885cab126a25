"""The trials of `bench validate`: what the detection runs slow down."""

from __future__ import annotations

import pytest

from bench.runner import trials


def test_only_the_named_kernel_is_slowed() -> None:
    target = trials.slowed_kernel("jit:update")
    assert target == ("jit", "update")
    slow = trials.slowing(target, 1.2)
    spec = {"variant": "jit", "kernel": "update", "batch_size": 32}
    assert slow(spec) == {**spec, "slowdown": 1.2} and "slowdown" not in spec
    other = {"variant": "jit", "kernel": "predict", "batch_size": 32}
    assert slow(other) == other
    for bad in ("jit", "jit:epoch", ":update"):
        with pytest.raises(ValueError, match="VARIANT:KERNEL"):
            trials.slowed_kernel(bad)
