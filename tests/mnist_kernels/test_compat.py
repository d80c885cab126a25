"""The JAX releases this project supports, and the calls that differ between them
(:mod:`mnist_kernels.compat`), on whichever JAX runs the tests (CI runs 0.10 and 0.12)."""

from __future__ import annotations

import tomllib

import jax
import pytest
from jax.sharding import AxisType

from mnist_kernels import catalog, compat
from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("text", "release", "ok"),
    [
        ("0.10.2", (0, 10, 2), True),
        ("0.11.0rc1", (0, 11, 0), True),
        ("0.12.0.1", (0, 12, 0), True),
        ("0.9.2", (0, 9, 2), False),
        ("0.13.0", (0, 13, 0), False),
        ("1.0", (1, 0, 0), False),
    ],
)
def test_releases_are_read_and_judged(text, release, ok):
    assert catalog.jax_release(text) == release
    assert catalog.jax_supported(text) is ok


def test_the_running_jax_is_supported():
    assert catalog.jax_supported(jax.__version__), jax.__version__
    assert compat.version() == catalog.jax_release(jax.__version__)


def test_the_package_pins_the_supported_releases():
    """pyproject's ``jax`` and ``jaxlib`` ranges, and the accelerator extras', are
    ``SUPPORTED_JAX``: installing never gives a JAX the code was not written for."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    (low, high) = (".".join(map(str, v)) for v in catalog.SUPPORTED_JAX)
    want = f">={low},<{high}"
    pins = [d for d in project["dependencies"] if d.startswith(("jax>", "jaxlib>"))]
    assert pins == [f"jax{want}", f"jaxlib{want}"]
    for extra in ("cuda12", "cuda13", "tpu"):
        assert project["optional-dependencies"][extra] == [f"jax[{extra}]{want}"]


def test_make_mesh_takes_sizes_names_types_and_devices():
    devices = jax.devices("cpu")[:4]
    mesh = compat.make_mesh((2, 2), ("batch", "model"), (AxisType.Auto,) * 2, devices=devices)
    assert dict(mesh.shape) == {"batch": 2, "model": 2}
    assert list(mesh.devices.ravel()) == devices
    assert mesh.axis_types == (AxisType.Auto, AxisType.Auto)
    one = compat.make_mesh((4,), ("batch",), devices=devices)
    assert dict(one.shape) == {"batch": 4}


def test_the_compat_subset_names_modules_that_exist():
    """CI's second leg runs ``-m compat``: a module renamed away would silently drop out."""
    from tests.conftest import COMPAT_MODULES

    assert all((ROOT / m).is_file() for m in COMPAT_MODULES), COMPAT_MODULES
