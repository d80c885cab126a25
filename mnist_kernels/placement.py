"""Placing arrays on devices, also when a mesh spans several processes (``jax.distributed``),
and bringing them back to the host.

Under ``jax.distributed`` a mesh spans every process's devices and no process can address all
of them. Each process then passes the same global value to :func:`put` and contributes only its
own slice (``jax.make_array_from_process_local_data``). In one process these are plain
``jax.device_put`` calls.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

Params = list[tuple[Any, Any]]


def to_host(params: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Placed ``(w, b)`` params as NumPy arrays (gathered from every process if need be)."""
    if any(spans_processes(a) for a in jax.tree.leaves(params)):
        return [(gather(w), gather(b)) for w, b in params]
    return [(np.asarray(w), np.asarray(b)) for w, b in jax.device_get(params)]


def spans_processes(x: Any) -> bool:
    """Whether ``x`` is a global array this process cannot address in full."""
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def gather(x: Any) -> np.ndarray:
    """A global array as a NumPy array on every process (a collective when it is sharded)."""
    if not spans_processes(x) or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _process_block(shape: tuple[int, ...], sharding: Any) -> tuple[slice, ...] | None:
    """The block of a global array this process's devices hold, or None if it is not one."""
    block = []
    indices = list(sharding.addressable_devices_indices_map(shape).values())
    for d, size in enumerate(shape):
        ranges = {idx[d].indices(size)[:2] for idx in indices}
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        if sum(b - a for a, b in ranges) != hi - lo:
            return None  # this process's pieces do not tile one block
        block.append(slice(lo, hi))
    return tuple(block)


def _put_one(x: Any, sharding: Any) -> jax.Array:
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    block = _process_block(x.shape, sharding)
    if block is None:
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.make_array_from_process_local_data(sharding, x[block], x.shape)


def put(tree: Any, sharding: Any) -> Any:
    """``jax.device_put(tree, sharding)`` that also works for a mesh spanning processes.

    ``sharding`` is one sharding for every leaf or a tree of them shaped like ``tree``.
    """
    if all(s.is_fully_addressable for s in jax.tree.leaves(sharding)):
        return jax.device_put(tree, sharding)
    if isinstance(sharding, jax.sharding.Sharding):
        return jax.tree.map(lambda a: _put_one(a, sharding), tree)
    return jax.tree.map(_put_one, tree, sharding)


def host_params(params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
    # Build parameters on the host first: putting an array that already lives on device 0 to
    # a replicated sharding may share its buffer, and donating the copy would delete it.
    return [(np.asarray(w), np.asarray(b)) for w, b in params]
