"""The parent's side of the worker protocol (the child is :mod:`bench.worker`): start a worker
process with its environment, send it requests, read its answers with a timeout; and the
requests every sweep begins and ends with, the backend probe and the machine's peaks.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import machine
from .worker import PREFIX

STARTUP_TIMEOUT_S = 180.0


class WorkerDied(RuntimeError):
    pass


class WorkerTimeout(RuntimeError):
    pass


class WorkerProcess:
    """One ``python -m bench.worker`` child and a thread reading its answers."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(
            [python, "-m", "bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,  # a Ctrl-C reaches the parent, which ends the worker
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                with contextlib.suppress(json.JSONDecodeError):
                    self.events.put(json.loads(line[len(PREFIX) :]))
        self.events.put(None)  # end of stream: the process exited

    def send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerDied(self.why_dead()) from e

    def wait_for(self, kinds: set[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout(f"no answer within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise WorkerDied(self.why_dead())
            if event.get("event") in kinds:
                return event
            if event.get("event") == "error":
                raise RuntimeError(event.get("error", "worker error"))

    def request(self, request: dict[str, Any], kind: str, timeout: float) -> dict[str, Any]:
        self.send(request)
        return self.wait_for({kind}, timeout)

    def why_dead(self) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            what = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        else:
            what = f"worker exited with code {code}"
        tail = self.log_tail()
        return f"{what}; last log lines: {tail}" if tail else what

    def log_tail(self, n: int = 6) -> str:
        try:
            self._log.flush()
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln]
        except OSError:
            return ""
        return " | ".join(lines[-n:])[-1500:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "exit"})
                self.proc.wait(timeout=5)
            except (WorkerDied, subprocess.TimeoutExpired):
                self.kill()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()


def worker_env(
    backend: str, n_devices: int, base: dict[str, str] | None = None, *, root: Path | None = None
) -> dict[str, str]:
    """Environment of a worker: on CPU, ``n_devices`` fake devices; persistent cache off.

    ``root`` is the source tree the worker imports (``bench ab`` runs two trees).
    """
    env = dict(os.environ if base is None else base)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
        env["XLA_FLAGS"] = (
            f"{flags.strip()} --xla_force_host_platform_device_count={n_devices}".strip()
        )
    root = str(root or machine.ROOT)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def measure_peaks(
    present: dict[str, Any], dtypes: list[str], run_dir: Path, *, quick: bool, tag: str = ""
) -> dict[str, Any]:
    """Each present backend's peaks, measured in a fresh worker."""
    peaks: dict[str, Any] = {}
    for b in present:
        w = WorkerProcess(worker_env(b, 1), run_dir / "logs" / f"peaks-{b}{tag}.log")
        try:
            peaks[b] = w.request(
                {"op": "peaks", "backend": b, "dtypes": dtypes, "quick": quick},
                "peaks",
                STARTUP_TIMEOUT_S,
            )["peaks"]
        except (WorkerDied, WorkerTimeout, RuntimeError) as e:
            print(
                f"warning: could not measure the {b} peaks ({e}); peak_fraction will be empty",
                file=sys.stderr,
            )
        finally:
            w.close()
    return peaks


#: peak figures where the best of two measurements is the machine's limit
PEAK_RATES = ("matmul_flops_per_s", "bandwidth_bytes_per_s", "copy_bytes_per_s", "read_bytes_per_s")


def best_peaks(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The higher of two peak measurements, per backend, dtype and figure: a peak measured
    during a slow spell of a shared machine is too low, and would put rows above 100%."""
    out = json.loads(json.dumps(first))
    for backend, by_dtype in second.items():
        for dtype, figures in by_dtype.items():
            mine = out.setdefault(backend, {}).setdefault(dtype, dict(figures))
            for key in PEAK_RATES:
                if isinstance(figures.get(key), (int, float)):
                    mine[key] = max(mine.get(key) or 0.0, figures[key])
    return out


def probe_and_peaks(
    backends: list[str], dtypes: list[str], run_dir: Path, *, quick: bool, want_peaks: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Probe backends in a worker; measure each present backend's peaks in a fresh one."""
    w = WorkerProcess(
        worker_env("any", 1, {k: v for k, v in os.environ.items()}), run_dir / "logs" / "probe.log"
    )
    try:
        probe = w.request({"op": "probe", "backends": backends}, "probe", STARTUP_TIMEOUT_S)
    finally:
        w.close()
    present = {b: i for b, i in probe["backends"].items() if "error" not in i}
    peaks = measure_peaks(present, dtypes, run_dir, quick=quick) if want_peaks else {}
    return probe, present, peaks
