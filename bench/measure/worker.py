"""The child process that measures: ``python -m bench.measure.worker``.

It reads one JSON request per line on stdin and answers on stdout (the requests and answers:
:mod:`bench.protocol`). A configuration that raises becomes a row with ``status: error``; a
request this worker cannot carry out exactly as asked is refused with an error answer; a crash
or a hang of the whole process is recorded by the parent, which starts a fresh worker for the
rest. Running every configuration in a child keeps the parent's memory flat over hundreds of
configurations, and the parent free of JAX.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

import numpy as np

from .. import catalog, protocol
from ..protocol import FAULT_ENV, TimingSettings
from ..results import rows
from . import timing


def emit(event: dict[str, Any], stream: Any = None) -> None:
    out = stream or sys.stdout
    out.write(protocol.encode(event))
    out.flush()


class Worker:
    """State of one worker: the dataset and the timing settings."""

    def __init__(self) -> None:
        self.settings = TimingSettings()
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.dataset: dict[str, Any] = {"name": "synthetic", "real": False, "source": None}
        self.canary: Any = None  # started by init

    def init(self, req: dict[str, Any]) -> dict[str, Any]:
        """Settings and examples; then a warm-up compile (see :func:`kernels.warm_compile`)."""
        from .kernels import warm_compile

        self.settings = TimingSettings.from_json(req.get("settings") or {})
        self.images, self.labels, self.dataset = load_examples(
            req.get("dataset", "fashion-mnist"),
            req.get("data_dir"),
            int(req.get("n_examples", 8192)),
        )
        warmed = warm_compile()  # on this worker's backend (its default one)
        from .canary import Canary

        self.canary = Canary()
        return {"event": "ready", "dataset": self.dataset, "pid": os.getpid(), "warmed": warmed}

    def measure(self, spec: dict[str, Any], devices: list[Any] | None = None) -> dict[str, Any]:
        """The row of ``spec``: measured, or ``status`` ``error``/``skipped`` with the reason."""
        row = rows.identity(spec, self.dataset)
        t0 = time.perf_counter()
        timing.phase("preparing")
        try:
            inject_fault(spec)
            before = self.canary.ratio() if self.canary else None
            row.update(self._measure(spec, devices))
            if self.canary:  # how slow the machine ran around this measurement
                row["canary_ratio"] = max(before, self.canary.ratio())
            row["status"] = "ok"
        except Exception as e:
            skipped = type(e).__name__ == "PeerUnavailable"
            row["status"] = "skipped" if skipped else "error"
            row["error"] = str(e) if skipped else f"{type(e).__name__}: {e}"
            if not skipped:
                row["traceback"] = traceback.format_exc(limit=8)[-4000:]
        row["wall_s"] = time.perf_counter() - t0
        return row

    def _measure(self, spec: dict[str, Any], devices: list[Any] | None) -> dict[str, Any]:
        if spec["kernel"] not in catalog.kernels_of(spec["variant"]):
            have = ", ".join(catalog.kernels_of(spec["variant"]))
            raise ValueError(f"{spec['variant']} has no {spec['kernel']} kernel (it has {have})")
        jax_step = catalog.framework(spec["variant"]) == "jax" and spec["kernel"] != catalog.EPOCH
        if spec.get("slowdown") not in (None, 1, 1.0) and not jax_step:
            raise ValueError("slowdown (bench validate) slows JAX update and predict kernels only")
        standard = spec.get("compile_options") in (None, catalog.STANDARD_COMPILE)
        if not standard and catalog.framework(spec["variant"]) != "jax":
            raise ValueError("compile options apply to the JAX variants' kernels only")

        if spec.get("cached_compile") and not jax_step:
            raise ValueError("cached_compile is timed for JAX update and predict kernels only")
        if spec["kernel"] == catalog.EPOCH:
            from .epoch import measure_epoch

            return measure_epoch(spec, self.images, self.labels, self.settings)
        if catalog.framework(spec["variant"]) == "jax":
            from .kernels import measure

            row = measure(spec, self.images, self.labels, self.settings, devices=devices)
            if spec.get("cached_compile"):
                from .cached import measure_cached

                row.update(measure_cached(spec))
            return row
        from . import peers

        return peers.measure(spec, self.images, self.labels, self.settings)


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


def answer(worker: Worker, req: dict[str, Any]) -> None:
    """Carry out one request, emitting its answer(s)."""
    op = req.get("op")
    protocol.check_request(req)
    if op == "hello":
        emit({"event": "hello", "protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid()})
    elif op == "init":
        emit(worker.init(req))
    elif op == "probe":
        from .probe import probe

        emit({"event": "probe", **probe(req.get("backends") or ["cpu"])})
    elif op == "peaks":
        from .peaks import measure_peaks

        keys = req.get("keys") or ["float32"]
        peaks = measure_peaks(
            req["backend"],
            keys,
            quick=bool(req.get("quick")),
            thin_batches=[int(b) for b in req.get("thin_batches") or ()],
        )

        emit({"event": "peaks", "backend": req["backend"], "peaks": peaks})
    elif op == "measure":
        emit({"event": "start", "config_id": req.get("config_id")})
        emit({"event": "row", "row": worker.measure(req["spec"])})
    else:
        emit({"event": "error", "error": f"unknown op {op!r}"})


def main() -> int:
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "exit":
            break
        try:
            answer(worker, req)
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
