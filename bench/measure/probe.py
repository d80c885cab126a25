"""Which backends this process's JAX has, with their devices, and the library versions."""

from __future__ import annotations

import platform
from typing import Any


def _device_memory(device: Any) -> int | None:
    try:
        return (device.memory_stats() or {}).get("bytes_limit")
    except Exception:
        return None


def probe(backends: list[str]) -> dict[str, Any]:
    """``{"backends": {name: facts or {"error": why}}, "python", "jax", "jaxlib", "numpy",
    "default_backend"}`` for the backends asked about."""
    import jax
    import jaxlib
    import numpy as np

    found: dict[str, Any] = {}
    for b in backends:
        try:
            devs = jax.devices(b)
        except RuntimeError as e:
            found[b] = {"error": str(e).splitlines()[0][:300]}
            continue
        found[b] = {
            "platform_version": getattr(devs[0].client, "platform_version", b),
            "device_kind": devs[0].device_kind,
            "device_count": len(devs),
            "memory_bytes": _device_memory(devs[0]),
        }
    return {
        "backends": found,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "default_backend": jax.default_backend(),
    }
