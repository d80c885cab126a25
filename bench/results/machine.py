"""Facts about the machine and the checkout a run happens on, and the one builder of a run's
``metadata.json`` (:func:`metadata`), which every command that writes a run directory uses.

Nothing here imports JAX: the parent process stays small; backend facts come from a worker's
probe.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import schema

#: the source tree this code runs from (the one a worker imports unless told otherwise).
ROOT = Path(__file__).resolve().parents[2]
#: environment variables that change what XLA, JAX, PyTorch or the math libraries do
ENV_PREFIXES = (
    "XLA_",
    "JAX_",
    "TF_CPP_",
    "CUDA_",
    "CUBLAS_",
    "CUDNN_",
    "NVIDIA_",  # NVIDIA_TF32_OVERRIDE among them
    "TPU_",
    "LIBTPU_",
    "PJRT_",
    "NCCL_",
    "TORCH",  # TORCH_*, TORCHINDUCTOR_*, TORCHDYNAMO_*
    "PYTORCH_",
    "OMP_",
    "KMP_",
    "MKL_",
    "DNNL_",
    "ONEDNN_",
    "OPENBLAS_",
)


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def run_id() -> str:
    """``YYYYmmdd-HHMMSS-host``: sortable and says where it ran."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:40] or "host"
    return f"{stamp}-{host}"


def cpu() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "cores": cores, "memory_bytes": memory, "arch": platform.machine()}


def env() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}


def git(root: Path = ROOT) -> dict[str, Any]:
    """Commit, its committer time (ISO 8601), the branch (None when detached: CI checkouts
    name it in ``GITHUB_REF_NAME``/``GITHUB_HEAD_REF``) and dirtiness of the checkout the bench
    code comes from (None outside git). The history orders a machine's runs by commit time."""

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    branch = run("symbolic-ref", "--quiet", "--short", "HEAD")
    if branch is None:
        branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    return {
        "commit": commit,
        "commit_time": run("show", "-s", "--format=%cI", "HEAD"),
        "branch": branch,
        "dirty": bool(status),
    }


def fingerprint(cpu_info: dict[str, Any], backends: dict[str, Any]) -> str:
    """Same hardware -> same fingerprint: CPU model, cores, memory (GiB), device kinds and counts.

    The host name is left out on purpose: identical CI runners share baselines.
    """
    mem = cpu_info.get("memory_bytes")
    key = {
        "cpu": cpu_info.get("model"),
        "cores": cpu_info.get("cores"),
        "memory_gib": round(mem / 2**30) if mem else None,
        "devices": {
            b: [i.get("device_kind"), i.get("device_count")]
            for b, i in sorted(backends.items())
            if "error" not in i
        },
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    backend = "-".join(sorted(b for b, i in backends.items() if "error" not in i)) or "none"
    return f"{backend}-{cpu_info.get('cores')}c-{digest}"


def tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("mnist-kernels-bench")
    except Exception:
        return "unknown"


def command_line() -> str:
    """This process's command, as a user would type it: ``python -m bench ...``."""
    return shlex.join(["python", "-m", "bench", *sys.argv[1:]])


def metadata(
    run_id: str,
    probe: dict[str, Any],
    backends: dict[str, Any],
    *,
    tree: Path = ROOT,
    **fields: Any,
) -> dict[str, Any]:
    """The ``metadata.json`` of a run: schema, versions (from a worker's ``probe``), the present
    ``backends``, CPU, environment, the checkout ``tree`` measured, the hardware fingerprint, the
    command line and the start time; the process and device counts of a one-process run; then
    ``fields`` (preset, peaks, dataset, what was skipped...), which win."""
    info = cpu()
    devices = sum(int(i.get("device_count", 0)) for i in backends.values())
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "run_id": run_id,
        "tool_version": tool_version(),
        **{k: probe.get(k) for k in ("python", "jax", "jaxlib", "numpy", "software", "doctor")},
        "backends": backends,
        "cpu": info,
        "env": env(),
        "git": git(tree),
        "host": os.uname().nodename,
        "hardware_fingerprint": fingerprint(info, backends),
        "command": command_line(),
        "start_time": now(),
        "end_time": None,
        "n_processes": 1,
        "global_devices": devices,
        "local_devices": devices,
        **fields,
    }
