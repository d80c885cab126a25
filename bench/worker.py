"""The child process that measures: ``python -m bench.worker``, driven by ``bench.sweep``.

It reads one JSON request per line on stdin and answers on stdout with lines that start with
:data:`PREFIX` (anything else on stdout, a library's chatter, is ignored by the parent)::

    {"op": "init", "dataset": "fashion-mnist", "data_dir": null, "n_examples": 32768,
     "settings": {...timing.Settings fields...}}                   -> {"event": "ready", ...}
    {"op": "probe", "backends": ["cpu", "gpu"]}                    -> {"event": "probe", ...}
    {"op": "peaks", "backend": "cpu", "dtypes": [...], "quick": false} -> {"event": "peaks", ...}
    {"op": "measure", "spec": {...}}  -> {"event": "start", "config_id": ...}
                                         then {"event": "row", "row": {...}}

A configuration that raises becomes a row with ``status: error``; a crash or a hang of the whole
process is recorded by the parent, which starts a fresh worker for the rest. Running every
configuration in a child keeps the parent's memory flat over hundreds of configurations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
import sys
import time
import traceback
from typing import Any

import numpy as np

PREFIX = "@@bench "


def emit(event: dict[str, Any], stream: Any = None) -> None:
    from .schema import clean

    def deep(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: deep(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [deep(x) for x in v]
        return clean(v)

    out = stream or sys.stdout
    out.write(PREFIX + json.dumps(deep(event)) + "\n")
    out.flush()


class Worker:
    """State of one worker: the dataset and the timing settings."""

    def __init__(self) -> None:
        from . import timing

        self.settings = timing.Settings()
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.dataset: dict[str, Any] = {"name": "synthetic", "real": False, "source": None}

    def init(self, req: dict[str, Any]) -> dict[str, Any]:
        from . import timing

        fields = {f.name for f in dataclasses.fields(timing.Settings)}
        given = {k: v for k, v in (req.get("settings") or {}).items() if k in fields}
        self.settings = timing.Settings(**given)
        self.images, self.labels, self.dataset = load_examples(
            req.get("dataset", "fashion-mnist"),
            req.get("data_dir"),
            int(req.get("n_examples", 8192)),
        )
        return {"event": "ready", "dataset": self.dataset, "pid": os.getpid()}

    def measure(self, spec: dict[str, Any], devices: list[Any] | None = None) -> dict[str, Any]:
        row = identity(spec, self.dataset)
        t0 = time.perf_counter()
        try:
            inject_fault(spec)
            if spec["kernel"] == "epoch":
                from .epoch import measure_epoch

                row.update(measure_epoch(spec, self.images, self.labels, self.settings))
            elif spec.get("framework", "jax") == "jax":
                from .measure import measure

                row.update(measure(spec, self.images, self.labels, self.settings, devices=devices))
            else:
                from . import peers

                row.update(peers.measure(spec, self.images, self.labels, self.settings))
            row["status"] = "ok"
        except Exception as e:
            skipped = type(e).__name__ == "PeerUnavailable"
            row["status"] = "skipped" if skipped else "error"
            row["error"] = str(e) if skipped else f"{type(e).__name__}: {e}"
            if not skipped:
                row["traceback"] = traceback.format_exc(limit=8)[-4000:]
        row["wall_s"] = time.perf_counter() - t0
        return row


FAULT_ENV = "MNIST_BENCH_INJECT_FAULT"


def inject_fault(spec: dict[str, Any]) -> None:
    """Test hook: ``MNIST_BENCH_INJECT_FAULT=KIND:VARIANT`` makes that variant's configurations
    ``raise``, ``crash`` (the process dies) or ``hang``, so the sweep's recovery can be tested."""
    kind, _, variant = os.environ.get(FAULT_ENV, "").partition(":")
    if not kind or variant != spec.get("variant"):
        return
    if kind == "raise":
        raise RuntimeError(f"fault injected by {FAULT_ENV}")
    if kind == "crash":
        os._exit(3)
    if kind == "hang":
        time.sleep(3600)


def identity(spec: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The identifying columns of a row for ``spec``."""
    sizes = [int(s) for s in spec["layer_sizes"]]
    return {
        "framework": spec.get("framework", "jax"),
        "variant": spec["variant"],
        "kernel": spec["kernel"],
        "backend": spec["backend"],
        "device_kind": spec.get("device_kind"),
        "host": socket.gethostname(),
        "n_processes": int(spec.get("n_processes", 1)),
        "n_devices": int(spec["n_devices"]),
        "layer_sizes": ",".join(map(str, sizes)),
        "depth": len(sizes) - 2,
        "width": max(sizes[1:-1], default=0),
        "batch_size": int(spec["batch_size"]),
        "dtype": spec["dtype"],
        "dataset": dataset.get("name"),
        "dataset_real": bool(dataset.get("real")),
    }


def load_examples(name: str, data_dir: str | None, n: int):
    """``n`` training examples of ``name``, or synthetic ones (said so) when it is not here."""
    from mnist_kernels import data

    n = max(1, min(int(n), 60000))
    try:
        where = data.locate(name, data_dir, download=False)
        x, y, _, _ = data.load_dataset(name, data_dir, n_train=n, n_test=1, download=False)
        info = {"name": name, "real": bool(where.get("real", True)), "source": where.get("source")}
    except Exception as e:
        x, y, _, _ = data.load_dataset("synthetic", n_train=n, n_test=1)
        info = {
            "name": "synthetic",
            "real": False,
            "source": None,
            "wanted": name,
            "why": str(e).splitlines()[0][:300],
        }
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32), info


def probe(backends: list[str]) -> dict[str, Any]:
    """Which backends exist here, with their devices, plus library versions."""
    import jax
    import jaxlib

    found: dict[str, Any] = {}
    for b in backends:
        try:
            devs = jax.devices(b)
        except RuntimeError as e:
            found[b] = {"error": str(e).splitlines()[0][:300]}
            continue
        mem = None
        try:
            stats = devs[0].memory_stats() or {}
            mem = stats.get("bytes_limit")
        except Exception:
            mem = None
        found[b] = {
            "platform_version": getattr(devs[0].client, "platform_version", b),
            "device_kind": devs[0].device_kind,
            "device_count": len(devs),
            "memory_bytes": mem,
        }
    return {
        "event": "probe",
        "backends": found,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "default_backend": jax.default_backend(),
    }


def main() -> int:
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "init":
                emit(worker.init(req))
            elif op == "probe":
                emit(probe(req.get("backends") or ["cpu"]))
            elif op == "peaks":
                from .measure import measure_peaks

                peaks = measure_peaks(
                    req["backend"], req.get("dtypes") or ["float32"], quick=bool(req.get("quick"))
                )
                emit({"event": "peaks", "backend": req["backend"], "peaks": peaks})
            elif op == "measure":
                emit({"event": "start", "config_id": req.get("config_id")})
                emit({"event": "row", "row": worker.measure(req["spec"])})
            elif op == "exit":
                break
            else:
                emit({"event": "error", "error": f"unknown op {op!r}"})
        except Exception as e:
            emit(
                {
                    "event": "error",
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(limit=8),
                }
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
