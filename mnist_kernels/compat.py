"""The JAX APIs that differ between the releases this project supports (0.10 to 0.12), each
spelled once here so the rest of the code reads the same on all of them.

- ``jax.make_mesh``'s first parameter is ``axis_shapes`` up to 0.10 and ``axis_sizes`` from
  0.11: :func:`make_mesh` passes the sizes and names by position.
- Float32 sums over devices and examples may be ordered differently by XLA from one release to
  the next; results agree to float32 rounding, not bit for bit (the tests' tolerances say how
  far, per release).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from .catalog import SUPPORTED_JAX as SUPPORTED_JAX
from .catalog import jax_release


def version() -> tuple[int, int, int]:
    """The running JAX's release, ``(major, minor, patch)``."""
    return jax_release(jax.__version__)


def make_mesh(
    axis_sizes: Sequence[int],
    axis_names: Sequence[str],
    axis_types: tuple[Any, ...] | None = None,
    *,
    devices: Sequence[Any] | None = None,
) -> jax.sharding.Mesh:
    """``jax.make_mesh`` on every supported release (its first parameter was renamed)."""
    return jax.make_mesh(tuple(axis_sizes), tuple(axis_names), axis_types, devices=devices)
