"""Which backends this process's JAX has, with their devices; the library versions and builds
that decide the arithmetic (JAX's plugins, libtpu, PyTorch and its CUDA), and JAX's own report
of the environment (its versions, the accelerator driver)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
from typing import Any

#: distributions whose version is recorded when installed (JAX's accelerator plugins among them)
PACKAGES = (
    "jax",
    "jaxlib",
    "jax-cuda12-plugin",
    "jax-cuda12-pjrt",
    "jax-cuda13-plugin",
    "jax-cuda13-pjrt",
    "libtpu",
    "libtpu-nightly",
    "torch",
    "numpy",
    "scipy",
    "pandas",
)


def _allocator_limit(device: Any) -> int | None:
    """What JAX's allocator may use on ``device`` (``memory_stats()["bytes_limit"]``: on a GPU a
    share of the device's memory, 75% by default)."""
    try:
        return (device.memory_stats() or {}).get("bytes_limit")
    except Exception:
        return None


def _device_total(backend: str, device: Any) -> int | None:
    """The device's own memory: ``nvidia-smi``'s total for an NVIDIA GPU; elsewhere JAX does
    not say (None)."""
    if backend != "gpu" or shutil.which("nvidia-smi") is None:
        return None
    index = getattr(device, "local_hardware_id", None) or 0
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=memory.total",
                "--format=csv,noheader,nounits",
                f"--id={index}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return int(float(out.stdout.strip().splitlines()[0])) * 2**20
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
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
            "memory_bytes": _device_total(b, devs[0]),
            "allocator_limit_bytes": _allocator_limit(devs[0]),
        }
    return {
        "backends": found,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "default_backend": jax.default_backend(),
        "software": software(),
    }


def software() -> dict[str, Any]:
    """``{"packages": {name: version}, "torch": {...} or None, "jax_environment": text}``."""
    packages = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            packages[name] = importlib.metadata.version(name)
    return {"packages": packages, "torch": _torch(), "jax_environment": _jax_environment()}


def _torch() -> dict[str, Any] | None:
    """PyTorch's version and build (``cuda`` with its CUDA and cuDNN versions, or ``cpu``)."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch
    except Exception as e:  # a broken install says so
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    cudnn = None
    with contextlib.suppress(Exception):
        cudnn = torch.backends.cudnn.version()
    return {
        "version": torch.__version__,
        "build": "cuda" if torch.version.cuda else "cpu",
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "cuda_available": bool(torch.cuda.is_available()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def _jax_environment() -> str | None:
    """``jax.print_environment_info``: versions, devices and the driver (``nvidia-smi``)."""
    import jax

    try:
        return jax.print_environment_info(return_string=True)
    except Exception as e:
        return f"unavailable: {type(e).__name__}: {e}"[:300]
